"""Child process of the crash tests: runs one store operation and freezes at a chosen point until killed.

Usage: python crash_child.py DATA_DIR OPERATION POINT READY_FILE
  delete       before-chroma | after-chroma      (delete the document of source 'moon.md')
  rebuild-bm25 mid-chunks | before-rename        (rebuild the BM25 index)
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
    elif operation == "rebuild-bm25":
        if point == "before-rename":
            bm25._fsync_dir = lambda path: freeze(ready)  # the temp folder is complete, not yet renamed
        else:
            real_dumps, calls = bm25.json.dumps, [0]

            def dumps(obj, *args, **kwargs):
                calls[0] += 1
                if calls[0] == 2:
                    sys.stdout.flush()
                    freeze(ready)  # chunks.jsonl is half written
                return real_dumps(obj, *args, **kwargs)

            bm25.json.dumps = dumps
        store.rebuild_bm25()
    raise SystemExit(f"operation {operation} finished without reaching {point}")


if __name__ == "__main__":
    main()
