"""Guards for untrusted names: an uploaded file's name never becomes a path outside the data directory.

hoprag ingests uploads as ``(name, bytes)`` pairs and never writes them to
disk under their own name; code that must save an upload (a server spool, an
export) goes through :func:`safe_upload_name` and :func:`path_inside`.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path, PurePosixPath, PureWindowsPath

from rag.errors import ConfigError

MAX_NAME_CHARS = 120
# Characters allowed in a stored name; everything else becomes "_".
_UNSAFE = re.compile(r"[^\w.\- ]", re.UNICODE)


def safe_upload_name(name: str) -> str:
    """A bare file name made from an untrusted ``name``: no directories, no NUL, no dot-only names.

    ``"../../etc/passwd"`` → ``"passwd"``, ``"C:\\\\x\\\\a.pdf"`` → ``"a.pdf"``,
    ``"a\\x00.pdf"`` → ``"a_.pdf"``; an empty result becomes ``"upload"``. The
    extension is kept so the loaders can still tell Markdown from text.
    """
    text = unicodedata.normalize("NFC", str(name)).replace("\x00", "_")
    # Take the last component under both POSIX and Windows rules (a browser may send either).
    base = PureWindowsPath(PurePosixPath(text).name).name
    base = _UNSAFE.sub("_", base).strip(" .")
    if len(base) > MAX_NAME_CHARS:
        stem, dot, ext = base.rpartition(".")
        keep = ext if dot and len(ext) <= 10 else ""
        base = (stem if keep else base)[: MAX_NAME_CHARS - len(keep) - 1] + ("." + keep if keep else "")
    return base or "upload"


def path_inside(root: str | Path, name: str) -> Path:
    """``root / safe_upload_name(name)``, checked to resolve inside ``root`` (symlinks included)."""
    root_path = Path(root).resolve()
    target = (root_path / safe_upload_name(name)).resolve()
    if target.parent != root_path:
        raise ConfigError(f"upload name {name!r} resolves outside {root_path}; refused")
    return target
