"""Process settings for a long-running dataflow: the garbage collector's thresholds.

A flow keeps hundreds of MB of long-lived objects (detector state per series, windows,
models) and allocates millions of short-lived ones (events, batches) that die by reference
counting, rarely in cycles. With CPython's default thresholds (700, 10, 10) events that live
across a few batches reach the oldest generation, and a full collection — a walk over
every object, the state included — runs every few seconds: measured on a 24-hour replay,
145 full collections took 11.4 s of a 44.5-s run and freed 64 objects. Larger thresholds
keep the young generation's collections (which do find the few cycles) and make full ones
rare; `benchmarks/bench_kafka.py` measures the effect on throughput and latency.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "tune_gc"]

#: Objects allocated between young collections; young collections between middle ones;
#: middle ones between full ones (which CPython also holds back until the survivors grew
#: the old generation by a quarter).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Set `GC_THRESHOLDS` for this process (idempotent; a flow's ``build_flow`` calls it).

    >>> tune_gc(); gc.get_threshold() == GC_THRESHOLDS
    True
    """
    gc.set_threshold(*GC_THRESHOLDS)
