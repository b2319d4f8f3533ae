"""ONNX autoencoder scoring throughput (feature rows/s) by batch size and thread count.

Two models, trained here first: the SMD one (38 features, the autoencoder's default
configuration, without the row-change inputs and z term `airis eval multivariate` adds;
trained on one machine) and the flow-shaped one (8 signals, per-service normalisation, trained
on a simulated day). Each is timed two ways per batch size:

* ``session`` — ``InferenceSession.run`` alone on a ready float32 array (the model's cost);
* ``detector`` — `OnnxDetector.score_batch` (conversion, the run, calibration to [0, 1] and
  the per-batch Prometheus updates: what the flow pays).

Single-thread (``intra_op_threads=1``, one per worker process) and onnxruntime's default
(all cores). Target: at least 1M rows/s on CPU at batch >= 512. Usage::

    python benchmarks/bench_onnx.py [--providers cpu|cuda] [--json FILE] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from airis.models.autoencoder import train_autoencoder
from airis.models.onnx_detector import OnnxDetector
from airis.models.service_features import service_rows, train_service_autoencoder
from airis.sources.simulator import Simulator

SMD = Path(__file__).resolve().parents[2] / "shared" / "data" / "smd" / "machine-1-6.npz"
BATCHES = (1, 64, 512, 4096, 32768)
#: (label, intra_op_threads): 0 lets onnxruntime use every core.
THREADS = (("1 thread", 1), ("default threads", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--smd", type=Path, default=SMD)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()

    models = {"smd (38 features)": _smd_model(args.smd), "flow (8 signals)": _flow_model()}
    results: list[dict[str, Any]] = []
    for model_label, (onnx_bytes, rows, keys) in models.items():
        for thread_label, threads in THREADS:
            detector = OnnxDetector(
                onnx_bytes,
                providers=args.providers,
                require_gpu=args.providers == "cuda",
                intra_op_threads=threads,
                model_name="bench",
            )
            for batch in BATCHES:
                x = _batch(rows, batch)
                k = None if keys is None else _batch(keys, batch).tolist()
                feeds = {"features": x}
                if k is not None:
                    feeds["key"] = np.zeros(batch, dtype=np.int64)
                session = detector._session  # the bare session, for the model's own cost
                for mode, call in (
                    ("session", lambda f=feeds, s=session: s.run(["error"], f)),
                    ("detector", lambda x=x, k=k, d=detector: d.score_batch(x, k)),
                ):
                    rate = _rows_per_second(call, batch, args.seconds)
                    results.append(
                        {
                            "model": model_label,
                            "threads": thread_label,
                            "providers": list(detector.providers),
                            "batch": batch,
                            "mode": mode,
                            "rows_per_s": rate,
                        }
                    )
                    print(
                        f"{model_label:18} {thread_label:15} batch {batch:>6} {mode:8} "
                        f"{rate:>14,.0f} rows/s",
                        flush=True,
                    )
    _table(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "machine": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "providers": args.providers,
        }
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
        print(f"→ {args.json}")


def _smd_model(path: Path) -> tuple[bytes, np.ndarray, None]:
    with np.load(path) as data:
        train, test = data["train"], data["test"]
    names = [f"dim{i:02d}" for i in range(train.shape[1])]
    model = train_autoencoder(train, names, seed=0, model_name="smd")
    return model.onnx_bytes, test.astype(np.float32), None


def _flow_model() -> tuple[bytes, np.ndarray, np.ndarray]:
    sim = Simulator(hours=6, seed=7, faults=[])
    model = train_service_autoencoder(sim, seed=0)
    rows = service_rows(sim)
    return model.onnx_bytes, rows.features, np.array(rows.services)


def _batch(rows: np.ndarray, size: int) -> np.ndarray:
    reps = -(-size // len(rows))
    return np.ascontiguousarray(np.concatenate([rows] * reps)[:size] if reps > 1 else rows[:size])


def _rows_per_second(call: Any, batch: int, seconds: float) -> float:
    for _ in range(3):  # warm-up: first runs allocate
        call()
    calls, started = 0, time.perf_counter()
    while True:
        call()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and calls >= 5:
            return calls * batch / elapsed


def _table(results: list[dict[str, Any]]) -> None:
    print()
    print("rows/s (session run / OnnxDetector.score_batch)")
    header = f"{'model':18} {'threads':15} " + " ".join(f"{b:>23}" for b in BATCHES)
    print(header)
    keys = sorted({(r["model"], r["threads"]) for r in results}, key=lambda k: (k[0], k[1]))
    for model, threads in keys:
        cells = []
        for b in BATCHES:
            by = {r["mode"]: r["rows_per_s"] for r in results
                  if (r["model"], r["threads"], r["batch"]) == (model, threads, b)}  # fmt: skip
            cells.append(f"{by['session'] / 1e6:>9.3f}M /{by['detector'] / 1e6:>9.3f}M")
        print(f"{model:18} {threads:15} " + " ".join(f"{c:>23}" for c in cells))


if __name__ == "__main__":
    main()
