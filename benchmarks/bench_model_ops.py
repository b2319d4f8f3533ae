"""Cost and false-alarm rate of the model-ops pieces: KS drift windows and the registry watcher.

* `KSDrift`: time per tested window (38 features, 5,000 reference rows, 500-row windows, as
  the autoencoder's reference), its pickled size, and the share of drift-free windows that
  drift with Holm's correction versus 0.01 per feature uncorrected;
* `ProductionWatcher.poll`: time per poll when nothing changed (one ``stat()``), and per poll
  that picks up a promote (a read of ``registry.json`` and the version's files).

Run: ``.venv/bin/python benchmarks/bench_model_ops.py [calm windows, default 400]``.
"""

from __future__ import annotations

import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from airis.models.registry import ModelRegistry, ProductionWatcher
from airis.operators.drift.ks_drift import KSDrift

FEATURES = 38
REFERENCE_ROWS = 5_000
WINDOW = 500


def main() -> None:
    windows = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    bench_drift(windows)
    bench_watcher()


def bench_drift(windows: int) -> None:
    rng = np.random.default_rng(1)
    names = [f"f{i:02d}" for i in range(FEATURES)]
    drift = KSDrift(rng.normal(size=(REFERENCE_ROWS, FEATURES)), names, window=WINDOW)
    batches = [rng.normal(size=(WINDOW, FEATURES)) for _ in range(windows)]
    holm = raw = 0
    started = time.perf_counter()
    for batch in batches:
        report = drift.update_batch(batch)
        holm += bool(report.drifted)
        raw += any(p <= drift.p_threshold for p in report.p_values.values())
    elapsed = time.perf_counter() - started
    print(
        f"KSDrift: {elapsed / windows * 1e3:.1f} ms per window of {WINDOW} rows x {FEATURES} "
        f"features vs {REFERENCE_ROWS:,} reference rows ({elapsed / windows / WINDOW * 1e6:.0f}"
        f" us per live row); pickled {len(pickle.dumps(drift)) / 1e6:.2f} MB"
    )
    print(
        f"KSDrift, {windows} drift-free windows: drifted with Holm at {drift.p_threshold}: "
        f"{holm / windows:.2%}; some feature at p <= {drift.p_threshold} uncorrected: "
        f"{raw / windows:.2%} (expected 1 - 0.99**{FEATURES} = {1 - 0.99**FEATURES:.1%})"
    )


def bench_watcher() -> None:
    with tempfile.TemporaryDirectory() as root:
        registry = ModelRegistry(Path(root))
        payload = np.random.default_rng(2).bytes(1 << 20)  # a 1 MiB model
        for _ in range(2):
            registry.register("ae", {"model.onnx": payload}, params={}, metrics={},
                              data_fingerprint="x")  # fmt: skip
        registry.promote("ae", 1)
        watcher = ProductionWatcher(Path(root), "ae")
        watcher.poll()
        polls = 100_000
        started = time.perf_counter()
        for _ in range(polls):
            watcher.poll()
        idle = (time.perf_counter() - started) / polls
        changes = 50
        started_total = 0.0
        for i in range(changes):
            registry.promote("ae", 2 - i % 2)
            started = time.perf_counter()
            assert watcher.poll() is not None
            started_total += time.perf_counter() - started
        print(
            f"ProductionWatcher.poll: {idle * 1e6:.1f} us when unchanged; "
            f"{started_total / changes * 1e3:.2f} ms to pick up a promote (1 MiB model, hashed)"
        )


if __name__ == "__main__":
    main()
