"""PNG, JPEG and TIFF images: OCR'd with Tesseract (each TIFF frame a page)."""

from __future__ import annotations

import io
import re

from rag.errors import IngestError

from ingest.loaders.base import LOADERS, Loaded, LoadOptions, Page, PageProgress, clean_text, stem_title
from ingest.ocr import MAX_PIXELS, OcrOptions, ocr_pages

# Larger images are scaled down to this many pixels before OCR (a 300-dpi Letter page is 8.4 Mpx).
OCR_MAX_PIXELS = 25_000_000


def _too_big(width: int, height: int) -> IngestError:
    return IngestError(
        f"image is {width} x {height} pixels ({width * height / 1e6:.0f} Mpx), over the "
        f"{MAX_PIXELS / 1e6:.0f} Mpx limit (decompression-bomb guard); scale it down"
    )


@LOADERS.register("image")
def load_image(data: bytes, name: str, options: LoadOptions, progress: PageProgress | None = None) -> Loaded:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError as exc:  # Pillow's own guard trips first on huge images
        size = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f" ({int(size[1]) / 1e6:.0f} Mpx)" if size else ""
        raise IngestError(
            f"image{pixels} is over the {MAX_PIXELS / 1e6:.0f} Mpx limit (decompression-bomb guard); scale it down"
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise IngestError(f"corrupt or unreadable image ({str(exc)[:80]})") from exc
    with image:
        frames = getattr(image, "n_frames", 1)
        if image.width * image.height > MAX_PIXELS:
            raise _too_big(image.width, image.height)

        def render(index: int):
            frame = ImageSequence.Iterator(image)[index]
            if frame.width * frame.height > MAX_PIXELS:
                raise _too_big(frame.width, frame.height)
            try:
                gray = frame.convert("L")
            except (OSError, ValueError) as exc:  # truncated or corrupt pixel data
                raise IngestError(f"corrupt or truncated image ({str(exc)[:80]})") from exc
            if gray.width * gray.height > OCR_MAX_PIXELS:
                scale = (OCR_MAX_PIXELS / (gray.width * gray.height)) ** 0.5
                gray = gray.resize((int(gray.width * scale), int(gray.height * scale)), Image.Resampling.LANCZOS)
            return gray

        texts = ocr_pages(render, range(frames), OcrOptions(options.ocr_languages, options.ocr_cache), progress)
    pages = tuple(Page(i + 1 if frames > 1 else None, clean_text(texts[i])) for i in range(frames))
    return Loaded("image", stem_title(name), pages)
