"""hoprag from Python: open a knowledge base, ingest, retrieve, ask, stream."""

import tempfile

from rag import RAG

with tempfile.TemporaryDirectory() as data_dir, RAG.open(data_dir) as rag:
    report = rag.ingest([("otters.md", b"# Sea otters\n\nSea otters use stones as tools to crack open shells.")])
    print(report.files[0].status, report.files[0].chunks, "chunk(s)")

    for hit in rag.retrieve("What do sea otters use stones for?", k=3):
        print(f"{hit.score:.2f}  {hit.chunk.source}: {hit.chunk.text[:50]}")

    answer = rag.ask("What do sea otters use stones for?", max_new_tokens=16)
    print(answer.text, [c.source for c in answer.citations], answer.timings["total_s"])

    for piece in rag.stream("Where do sea otters find stones?", max_new_tokens=8):
        print(piece if isinstance(piece, str) else f"\n{len(piece.citations)} citation(s)", end="")
