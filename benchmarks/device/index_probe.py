"""Ours vs pyseismic-lsr on the GPU machine's host CPU (Intel Xeon, Emerald Rapids).

What ran there on 2026-12-04 (benchmarks/results/index_emr_probe.json): both indexes
built with 8 threads, the process then pinned to two cores; single-thread latency
interleaved query by query (two passes, the second timed), and a 2-thread batch. The
device has pyseismic-lsr 0.5.2 only (0.5.4 has no wheel for its Python 3.12), whose
dataset API differs. Its batch_search keeps the thread pool created by the 8-thread
build, so its batch figures are not 2-thread figures. Run from the repository root with
the shared vectors copied to .devdata/vectors:

    python3 benchmarks/device/index_probe.py packages docstring
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
import seismic

sys.path.insert(0, os.getcwd())
from benchmarks.bench_index import POINTS  # noqa: E402
from index import SeismicIndex, exact_search, recall_vs_exact  # noqa: E402
from index.vectors import load_vector_shards  # noqa: E402

out = Path(os.environ.get("OUT", "/tmp"))
report = {
    "lscpu": subprocess.run(["lscpu"], capture_output=True, text=True).stdout,
    "numba": numba.__version__,
    "results": {},
}
for ds in sys.argv[1:]:
    docs = load_vector_shards(".devdata/vectors", f"{ds}_docs")
    qs = load_vector_shards(".devdata/vectors", f"{ds}_queries")
    os.sched_setaffinity(0, set(range(os.cpu_count())))
    numba.set_num_threads(min(8, numba.config.NUMBA_NUM_THREADS))
    SeismicIndex.build(docs[:2000]).search(qs[:2])
    t = time.perf_counter()
    SeismicIndex.build(docs).save(f"/tmp/ix2_{ds}")
    ours_build = time.perf_counter() - t
    ours = SeismicIndex.load(f"/tmp/ix2_{ds}")
    S0 = seismic.get_seismic_string()
    try:
        dset = seismic.SeismicDataset(dim=docs.shape[1])
        dset.add_documents_by_id(
            [str(i) for i in range(docs.shape[0])],
            docs.indices.astype(np.int64),
            docs.data.astype(np.float32),
            docs.indptr.astype(np.int64),
        )
    except (TypeError, AttributeError):
        dset = seismic.SeismicDataset()
        for i in range(docs.shape[0]):
            a, b = docs.indptr[i], docs.indptr[i + 1]
            dset.add_document(
                str(i),
                np.array([str(c) for c in docs.indices[a:b]], dtype=S0),
                docs.data[a:b].astype(np.float32),
            )
    t = time.perf_counter()
    rust = seismic.SeismicIndex.build_from_dataset(
        dset,
        num_threads=min(8, os.cpu_count()),
        n_postings=3500,
        centroid_fraction=0.1,
        summary_energy=0.4,
        max_fraction=1.5,
        doc_cut=15,
        min_cluster_size=2,
    )
    rust_build = time.perf_counter() - t
    truth, _ = exact_search(docs, qs, k=10)
    os.sched_setaffinity(0, {2, 3})
    numba.set_num_threads(2)
    sl = [
        (qs.indices[a:b].astype(np.int32), qs.data[a:b].astype(np.float32))
        for a, b in zip(qs.indptr[:-1], qs.indptr[1:], strict=True)
    ]
    rq = [(np.array([str(c) for c in i], dtype=S0), v) for i, v in sl]
    qids = np.array([str(i) for i in range(len(sl))], dtype=S0)
    rows = []
    for qc, hf in POINTS:
        w = {"ours": [], "pyseismic": []}
        found = {"ours": [], "pyseismic": []}
        for rep in range(2):
            for i, (qi, qv) in enumerate(sl):
                t0 = time.perf_counter()
                ids, _ = ours.search_vector(qi, qv, k=10, query_cut=qc, heap_factor=hf)
                t1 = time.perf_counter()
                res = rust.search("q", rq[i][0], rq[i][1], k=10, query_cut=qc, heap_factor=hf)
                t2 = time.perf_counter()
                if rep:
                    w["ours"].append(t1 - t0)
                    w["pyseismic"].append(t2 - t1)
                    found["ours"].append(ids.tolist())
                    found["pyseismic"].append([int(r[2]) for r in res])
        t = time.perf_counter()
        ours.search(qs, k=10, query_cut=qc, heap_factor=hf)
        b_ours = (time.perf_counter() - t) / len(sl) * 1e6
        t = time.perf_counter()
        rust.batch_search(
            qids,
            [q[0] for q in rq],
            [q[1] for q in rq],
            k=10,
            query_cut=qc,
            heap_factor=hf,
            num_threads=2,
        )
        b_rust = (time.perf_counter() - t) / len(sl) * 1e6
        for s, b in (("ours", b_ours), ("pyseismic", b_rust)):
            r = {
                "system": s,
                "qc": qc,
                "hf": hf,
                "R@10": round(recall_vs_exact(found[s], truth), 4),
                "mean_us": round(float(np.mean(w[s]) * 1e6), 1),
                "p50_us": round(float(np.median(w[s]) * 1e6), 1),
                "batch2t_us": round(b, 1),
            }
            rows.append(r)
            print(ds, r, flush=True)
    report["results"][ds] = {
        "ours_build_s_8t": ours_build,
        "rust_build_s_8t": rust_build,
        "ours_bytes": ours.nbytes,
        "rows": rows,
    }
    for target in (0.95, 0.98):
        for s in ("ours", "pyseismic"):
            ok = [r for r in rows if r["system"] == s and r["R@10"] >= target]
            best = min(ok, key=lambda r: r["mean_us"]) if ok else None
            print(f"{ds} R>={target} {s}: {best}")
(out / "probe2.json").write_text(json.dumps(report, indent=1))
