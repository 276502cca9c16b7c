"""Ingest speed, side by side: the LangChain tutorial pipeline vs ``hoprag bench ingest``.

LangChain: PyPDFLoader → RecursiveCharacterTextSplitter(1000, 200) →
Chroma.from_documents with HuggingFaceEmbeddings on the same all-MiniLM-L6-v2
folder hoprag uses. Model loading is excluded from both timings.

The LangChain packages (the ``bench`` extra) go into a venv of their own, because
langchain-huggingface pins an older huggingface-hub than hoprag's transformers::

    python -m venv ~/.cache/hoprag/bench-venv
    echo "$PWD/.venv/lib/python3.11/site-packages" > ~/.cache/hoprag/bench-venv/lib/python3.11/site-packages/hoprag.pth
    ~/.cache/hoprag/bench-venv/bin/pip install langchain-community==0.4.2 langchain-chroma==1.1.0
    ~/.cache/hoprag/bench-venv/bin/pip install --no-deps langchain-huggingface==1.2.3
    ~/.cache/hoprag/bench-venv/bin/python scripts/bench_ingest_langchain.py gnuplot.pdf liboctave.pdf

Reference corpus: ``apt-get download gnuplot-doc octave-doc`` then ``dpkg -x``.
Prints both figures, then the ratios the ingest issue targets (cold ≥ 3x faster
than LangChain, re-ingest ≥ 20x faster than cold). ``--rounds N`` alternates the two
N times and compares medians; ``--no-hoprag`` runs LangChain only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hoprag" / "models" / "all-MiniLM-L6-v2"


def run_langchain(files: list[str]) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from langchain_chroma import Chroma
    from langchain_community.document_loaders import PyPDFLoader
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    embeddings = HuggingFaceEmbeddings(model_name=str(MODEL), model_kwargs={"device": "cpu"})
    embeddings.embed_query("warm up")  # load outside the timed part, as hoprag's bench does
    persist = tempfile.mkdtemp(prefix="langchain-bench-")
    try:
        t0 = time.perf_counter()
        pages = [page for f in files for page in PyPDFLoader(f).load()]
        t_load = time.perf_counter() - t0
        splits = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(pages)
        Chroma.from_documents(documents=splits, embedding=embeddings, persist_directory=persist)
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(persist, ignore_errors=True)
    return {"pages": len(pages), "chunks": len(splits), "seconds": round(seconds, 2), "load_s": round(t_load, 2)}


def run_hoprag(files: list[str]) -> dict:
    hoprag = ROOT / ".venv" / "bin" / "hoprag"
    cmd = [str(hoprag) if hoprag.exists() else "hoprag", "bench", "ingest", *files, "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--no-hoprag", action="store_true", help="run the LangChain pipeline only")
    parser.add_argument(
        "--rounds", type=int, default=1,
        help="alternate the two pipelines this many times and compare medians (machine noise hits both alike)",
    )
    args = parser.parse_args()
    files = [str(Path(f).resolve()) for f in args.files]
    runs: dict[str, list[dict]] = {"hoprag": [], "langchain": []}
    for round_no in range(1, max(args.rounds, 1) + 1):
        if not args.no_hoprag:
            h = run_hoprag(files)
            runs["hoprag"].append(h)
            print(f"[{round_no}] hoprag     cold {h['cold_s']:7.2f} s  re-ingest {h['reingest_s']:7.3f} s  "
                  f"{h['pages']} pages  {h['chunks']} chunks", flush=True)
        lc = run_langchain(files)
        runs["langchain"].append(lc)
        print(f"[{round_no}] langchain  cold {lc['seconds']:7.2f} s  (PyPDFLoader {lc['load_s']:.2f} s)  "
              f"{lc['pages']} pages  {lc['chunks']} chunks", flush=True)
    result: dict = {"rounds": runs}
    lc_s = statistics.median(r["seconds"] for r in runs["langchain"])
    result["langchain_cold_s"] = lc_s
    if runs["hoprag"]:
        cold = statistics.median(r["cold_s"] for r in runs["hoprag"])
        reingest = statistics.median(r["reingest_s"] for r in runs["hoprag"])
        result.update(hoprag_cold_s=cold, hoprag_reingest_s=reingest)
        result["cold_speedup_vs_langchain"] = round(lc_s / cold, 2)
        result["reingest_speedup_vs_cold"] = round(cold / max(reingest, 1e-9), 1)
        label = "median of each" if len(runs["langchain"]) > 1 else "one run each"
        print(f"cold ingest ({label}): hoprag {cold:.2f} s, LangChain {lc_s:.2f} s: "
              f"{result['cold_speedup_vs_langchain']}x faster (target >= 3x)")
        print(f"re-ingest:   {result['reingest_speedup_vs_cold']}x faster than cold (target >= 20x)")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
