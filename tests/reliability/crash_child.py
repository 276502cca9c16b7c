"""Child process of the crash tests: runs one store operation and freezes at a chosen point until killed.

Usage: python crash_child.py DATA_DIR OPERATION POINT READY_FILE
  delete       before-chroma | after-chroma      (delete the document of source 'moon.md')
  rebuild-bm25 mid-chunks | before-rename        (rebuild the lexical index: inside its SQLite transaction,
                                                 or with the BM25 base written but not yet renamed)
  add          after-commit                      (add 'extra.md': committed in the manifest, lexical not yet)
The child writes READY_FILE when it reaches POINT, then sleeps; the parent sends SIGKILL.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def freeze(ready: Path) -> None:
    ready.write_text("ready")
    while True:
        time.sleep(1)


def main() -> None:
    data_dir, operation, point, ready = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
    import rag.store.lexical as bm25
    from rag.store import Store

    store = Store(Path(data_dir) / "index", "default")
    if operation == "delete":
        doc = store.resolve("moon.md")
        real_delete = store.vectors.delete_document

        def delete_document(doc_id):
            if point == "before-chroma":
                freeze(ready)
            real_delete(doc_id)
            freeze(ready)  # after-chroma: chunks gone, manifest row not yet

        store.vectors.delete_document = delete_document
        store.delete(doc.doc_id)
    elif operation == "add":
        from rag.types import Chunk, Document
        import numpy as np

        store.lexical.apply = lambda *a, **k: freeze(ready)
        chunk = Chunk("extra:00000", "extra", "Quokkas live on Rottnest Island.", "extra.md", index=0)
        vec = np.ones((1, store.collection.get(limit=1, include=["embeddings"])["embeddings"].shape[1]), np.float32)
        store.add_document(Document("extra", "extra.md", "extra", 1, 1, 0.0), [chunk], vec / np.linalg.norm(vec))
    elif operation == "rebuild-bm25":
        if point == "before-rename":
            bm25.os.replace = lambda src, dst: freeze(ready)  # the base file is complete, not yet renamed
        else:
            from contextlib import contextmanager

            @contextmanager
            def tx():
                db = store.lexical.table.db()
                db.execute("BEGIN IMMEDIATE")
                yield db
                freeze(ready)  # every row written, nothing committed

            store.lexical.table.tx = tx
        store.rebuild_bm25()
        store.lexical.wait_saved()
    raise SystemExit(f"operation {operation} finished without reaching {point}")


if __name__ == "__main__":
    main()
