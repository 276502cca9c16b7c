"""``hoprag bench ingest --ray-nodes 1,2``: cold ingest on local Ray clusters of 1, 2, ... one-CPU nodes.

For each node count: a fresh Ray cluster (one ``ray start`` process per node,
:mod:`rag.bench.local_cluster`) and a fresh ``chroma run`` server, the embedder
loaded on every node first (the local figures exclude the model load too), then
the timed ``hoprag ingest --ray`` of the files into an empty knowledge base;
everything is stopped before the next count. Besides ``cold_s`` each count reports
whether its chunks are the local ingest's, the CPU seconds of the driver and of the
Chroma server (on a small machine they share the nodes' cores), and the load average.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from rag.config import Settings
from rag.errors import ConfigError
from rag.extras import require
from rag.store import Store

from rag.bench.local_cluster import AUTH_ENV, chroma_server, ray_cluster

Snapshot = dict[str, tuple[str, np.ndarray]]  # chunk id -> (text, vector)


def node_counts(text: str) -> list[int]:
    """``--ray-nodes``: comma-separated node counts of at least 1, e.g. 1,2."""
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"--ray-nodes {text!r} must be comma-separated node counts, e.g. 1,2") from exc
    if not counts or min(counts) < 1:
        raise ConfigError(f"--ray-nodes {text!r} must list node counts of at least 1, e.g. 1,2")
    return list(dict.fromkeys(counts))


def snapshot(store: Store) -> Snapshot:
    """Every chunk of the knowledge base: id -> (text, vector)."""
    got = store.collection.get(include=["documents", "embeddings"])
    return {i: (t, np.asarray(v, dtype=np.float32)) for i, t, v in zip(got["ids"], got["documents"], got["embeddings"])}


def compare(got: Snapshot, local: Snapshot) -> dict:
    """Same chunk ids and texts as the local ingest, and the lowest cosine between their vectors."""
    same = set(got) == set(local) and all(got[i][0] == local[i][0] for i in local)
    shared = [i for i in local if i in got]
    cosine = min((float(np.dot(got[i][1], local[i][1])) for i in shared), default=0.0)
    return {"same_chunks_as_local": same, "min_cosine_vs_local": round(cosine, 4)}


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) of process ``pid`` so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _node_cpu_s(chroma_pid: int) -> dict[int, float]:
    """CPU seconds so far of each Ray node (a ``ray start`` process this one started, with every process below it)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    nodes: dict[int, float] = {}
    for node in children.get(os.getpid(), []):
        if node == chroma_pid:
            continue
        todo, total = [node], 0.0
        while todo:
            pid = todo.pop()
            total += _cpu_s(pid)
            todo.extend(children.get(pid, []))
        nodes[node] = total
    return nodes


def bench_ray(files: Sequence[Path], counts: Sequence[int], settings: Settings, work: Path,
              local: Snapshot | None = None) -> dict[str, dict]:
    """``{"N": {"cold_s", ...}}`` for each node count in ``counts``."""
    from ingest.distributed import RayRunner
    from rag.pipeline import RAG

    os.environ.update(AUTH_ENV)  # this process is the clusters' driver: their token, before ray is imported
    require("ray", "ray")  # before starting anything: the one-line error naming the extra
    out: dict[str, dict] = {}
    for n in counts:
        root = work / f"ray-{n}"
        with chroma_server(root / "chroma") as chroma, ray_cluster(n, root) as cluster:
            address = cluster.address
            s = settings.replace(data_dir=str(root / "data"), chroma_url=chroma.url, kb="bench")
            runner = RayRunner(s, address)
            try:
                runner.warm_up()  # the model loads on every node outside the timed part
                with RAG(s) as rag:
                    load = os.getloadavg()[0]
                    cpu0, chroma0, nodes0 = time.process_time(), _cpu_s(chroma.pid), _node_cpu_s(chroma.pid)
                    commits: dict[str, list[float]] = {}  # source -> [store began, done]

                    def progress(source: str, stage: str, _: float) -> None:
                        if stage in ("store", "done"):
                            commits.setdefault(source, []).append(time.perf_counter())

                    t0 = time.perf_counter()
                    report = rag.ingest(files, progress=progress, ray=address)
                    cold_s = time.perf_counter() - t0
                    driver_cpu, chroma_cpu = time.process_time() - cpu0, _cpu_s(chroma.pid) - chroma0
                    nodes_cpu = [round(t - nodes0.get(p, 0.0), 2) for p, t in _node_cpu_s(chroma.pid).items()]
                    got = snapshot(rag.store) if local is not None else None
            finally:
                runner.close()
        pages = sum(f.pages for f in report.files)
        figures = {
            "cold_s": round(cold_s, 3),
            "files": len(report.files),
            "failed": [f"{Path(f.source).name}: {f.reason}" for f in report.failed],
            "pages": pages,
            "chunks": sum(f.chunks for f in report.files),
            "pages_per_s": round(pages / cold_s, 2) if cold_s > 0 else 0.0,
            "driver_cpu_s": round(driver_cpu, 2),
            # Writing the documents to Chroma and the lexical index, in the driver, after their tasks.
            "commit_s": round(sum(t[-1] - t[0] for t in commits.values() if len(t) > 1), 3),
            "chroma_cpu_s": round(chroma_cpu, 2),
            # The nodes' CPU seconds over their CPU-seconds of wall time: under 1 when they waited (for
            # work, the driver, or the machine's other processes).
            "nodes_cpu_s": nodes_cpu,  # per node: how evenly the work spread
            "nodes_busy": round(sum(nodes_cpu) / (cold_s * n), 2) if cold_s > 0 else 0.0,
            "load_1m_before": round(load, 2),
        }
        if got is not None:
            figures.update(compare(got, local))
        first = out.get(str(counts[0]))
        if first is not None:
            figures["speedup"] = round(first["cold_s"] / cold_s, 2) if cold_s > 0 else None
            figures["efficiency"] = round(figures["speedup"] * counts[0] / n, 2) if figures["speedup"] else None
        out[str(n)] = figures
    return out
