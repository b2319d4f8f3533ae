"""Per-event cost of the log and trace paths, in one process, without Bytewax or a store.

In `airis demo` the log and trace windows are about a third of the dataflow's thread. Spans
and log lines travel as columns, one `SpanBatch` or `LogBatch` per service and batch of five
simulated minutes (the demo's). This measures each step of their path alone on the
simulator's telemetry (15 services, seed 7, default 6 hours ending 2026-12-05T00:00Z): the
receipt of the producers' batches (unpickling them, what the flow's process pays), the store's
encoding of them into blocks (`encode_blocks`), the log tokens (`tokenise` line by line, and
`tokenise_many` over each batch's lines, as the windows call it), the log windows with template
mining (`ServiceLogSignals`) and the span windows (`ServiceTraceSignals`). Every
step runs once unmeasured first (imports, caches, the regexes). Last, the masks as they run
(`_FAST_FORMS`) against `MASKS` as written, in turns within the process, 10 rounds each: on a
noisy machine a difference of a few percent shows only so.

Run: ``.venv/bin/python benchmarks/bench_signals.py [hours, default 6]``.
"""

from __future__ import annotations

import functools
import gc
import pickle
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from in_turns import in_turns  # a sibling script, by path

from airis.batches import EventBatch
from airis.operators.signals import log_tokens
from airis.operators.signals.log_signals import ServiceLogSignals
from airis.operators.signals.log_tokens import tokenise, tokenise_many
from airis.operators.signals.trace_signals import ServiceTraceSignals
from airis.runtime import tune_gc
from airis.settings import Settings
from airis.sinks.clickhouse_encoding import encode_blocks
from airis.sources.simulator import recent_simulation
from airis.sources.simulator.process import simulated_batches

END = datetime(2026, 12, 5, tzinfo=UTC)
TICKS_PER_BATCH = 30  # five simulated minutes: the demo's `DEMO_BATCH_SECONDS`
EVENT_TIME = Settings().event_time  # the flows' windows and lateness


def main() -> None:
    hours = float(sys.argv[1]) if len(sys.argv) > 1 else 6.0
    tune_gc()  # as the flows do
    sim = recent_simulation(hours, 7, END)
    logs = list(simulated_batches("logs", sim, TICKS_PER_BATCH))
    spans = list(simulated_batches("traces", sim, TICKS_PER_BATCH))
    for name, batches in (("log records", logs), ("spans", spans)):
        sent = [pickle.dumps(batch, pickle.HIGHEST_PROTOCOL) for batch in batches]
        report(f"receive {name} (unpickle)", count(batches), lambda s=sent: [
            pickle.loads(batch) for batch in s
        ])  # fmt: skip
        report(f"encode {name} (encode_blocks)", count(batches), lambda b=batches: [
            encode_blocks(batch) for batch in b
        ])  # fmt: skip
    lines = [body for batch in logs for part in batch for body in part.column("body")]
    report("log tokens (tokenise)", len(lines), lambda: [tokenise(line) for line in lines])
    bodies = [part.column("body") for batch in logs for part in batch]
    report("log tokens per batch (tokenise_many)", len(lines), lambda: [
        tokenise_many(part) for part in bodies
    ])  # fmt: skip
    report("log windows (ServiceLogSignals)", count(logs), lambda: windows(logs, _log_windows))
    report("span windows (ServiceTraceSignals)", count(spans), lambda: windows(spans, _spans))
    compare_masks(bodies, len(lines))


def compare_masks(bodies: list[Any], events: int, rounds: int = 10) -> None:
    """`tokenise_many` with the masks as they run and with `MASKS` as written, in turns."""
    as_written = tuple(
        (log_tokens._applies(name), functools.partial(re.compile(pattern).sub, log_tokens._MARK))
        for name, pattern in log_tokens.MASKS
    )
    as_they_run = log_tokens._MASK_STEPS

    def masking(steps: tuple) -> Callable[[], float]:
        def run() -> float:
            log_tokens._MASK_STEPS = steps
            started = time.perf_counter()
            for part in bodies:
                tokenise_many(part)
            return (time.perf_counter() - started) / events * 1e6

        return run

    try:
        ways = {"as they run": masking(as_they_run), "MASKS as written": masking(as_written)}
        medians = in_turns(ways, rounds)
    finally:
        log_tokens._MASK_STEPS = as_they_run
    print(
        "log tokens per batch, masks "
        + ", ".join(f"{kind} {median:.2f}" for kind, median in medians.items())
        + f" us/event (median of {rounds} rounds in turns)"
    )


def count(batches: list[list[EventBatch]]) -> int:
    return sum(len(part) for batch in batches for part in batch)


def report(what: str, events: int, step: Callable[[], object]) -> None:
    """The second run of ``step`` (the first warms it up), in µs per event."""
    step()
    gc.collect()
    started = time.perf_counter()
    step()
    seconds = time.perf_counter() - started
    print(f"{what}: {seconds / events * 1e6:.2f} us/event ({events:,} events in {seconds:.2f} s)")


def windows(batches: list[list[EventBatch]], make: Callable[[], Any]) -> int:
    """Every batch through one windowing operator per service, as the flow keys them."""
    by_service: dict[str, Any] = {}
    closed = 0
    for batch in batches:
        for part in batch:
            if part.service not in by_service:
                by_service[part.service] = make()
            closed += len(by_service[part.service].update(part)[0])
    return closed + sum(len(operator.close_all()) for operator in by_service.values())


def _log_windows() -> ServiceLogSignals:
    return ServiceLogSignals(
        window_seconds=EVENT_TIME.window_seconds,
        lateness_seconds=EVENT_TIME.allowed_lateness_seconds,
    )


def _spans() -> ServiceTraceSignals:
    return ServiceTraceSignals(
        window_seconds=EVENT_TIME.trace_window_seconds,
        lateness_seconds=EVENT_TIME.allowed_lateness_seconds,
    )


if __name__ == "__main__":
    main()
