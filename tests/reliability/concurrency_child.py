"""Child process of the concurrency tests: ingest some files into a shared knowledge base while asking questions.

Usage: python concurrency_child.py DATA_DIR WORKER_ID FILES [CHROMA_URL]
Prints one JSON line: {"worker": id, "added": n, "asked": n, "errors": [...]}.
"""

from __future__ import annotations

import json
import sys

from rag import RAG, Settings
from rel_helpers import HashEmbedder


def main() -> None:
    data_dir, worker, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    url = sys.argv[4] if len(sys.argv) > 4 else ""
    errors: list[str] = []
    added = asked = 0
    # A torch-free embedder keeps the children light; the store is what is under test.
    with RAG(Settings(data_dir=data_dir, chroma_url=url), embedder=HashEmbedder()) as rag:
        for i in range(files):
            body = (
                f"# Report {worker}-{i}\n\nWorker {worker} wrote file {i}. The codeword of file {worker}-{i} "
                f"is falcon{worker}x{i}. It is stored in box {worker * 10 + i}.\n"
            )
            try:
                report = rag.ingest([(f"w{worker}-f{i}.md", body.encode())])
                added += sum(f.status == "added" for f in report.files)
                errors += [f.reason for f in report.failed]
                hits = rag.retrieve(f"falcon{worker}x{i}", k=3)
                asked += 1
                if not any(f"falcon{worker}x{i}" in h.chunk.text for h in hits):
                    errors.append(f"own file {worker}-{i} not retrievable right after ingest")
            except Exception as exc:  # the test reports every failure, whatever its type
                errors.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps({"worker": worker, "added": added, "asked": asked, "errors": errors}))


if __name__ == "__main__":
    main()
