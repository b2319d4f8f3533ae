"""`bench_kafka.py`'s measurements that alternate two runs: (f) the JSON flow with and without
its store, (s) the JSON flow's share of the ceiling, (l) the JSON flow on labelled points and
on points without labels, (p) the JSON flow on two processes and on one.
``bench_kafka.py --only f`` (``s``, ``l``, ``p``) runs them (see its docstring)."""

from __future__ import annotations

import statistics

from bench_kafka import ceiling, fill_topic, whole_flow  # a sibling script, by path


def store_cost(bootstrap: str, hours: float, pairs: int = 2) -> dict:
    """(f) the whole flow (JSON, 1 process) with and without the store, alternating on one
    topic: the share of the run the store takes (its inserts' Python under the flow's GIL,
    and the embedded engine's work on the same cores)."""
    filled = fill_topic(bootstrap, hours, "json")
    runs: dict[str, list[float]] = {"with_store_s": [], "without_store_s": []}
    for _ in range(pairs):
        for store, name in ((True, "with_store_s"), (False, "without_store_s")):
            result = whole_flow(bootstrap, hours, 1, filled=filled, store=store)
            runs[name].append(result["seconds"])
    share = 1 - sum(runs["without_store_s"]) / sum(runs["with_store_s"])
    result = {**runs, "points": filled[1], "store_share_of_run": round(share, 3)}
    print(f"(f) the store's cost: {result}", flush=True)
    return result


def share_of_ceiling(bootstrap: str, hours: float, pairs: int = 3) -> dict:
    """(s) the JSON flow's steady rate (1 process) over the ceiling's, both on one topic, in
    ``pairs`` turns: the machine's speed moves within minutes (±20 % between two identical
    runs), so one of each can put the share anywhere; the median pair says it."""
    filled = fill_topic(bootstrap, hours, "json")
    ceilings, flows, shares = [], [], []
    for _ in range(pairs):
        ceilings.append(ceiling(bootstrap, hours, "json", filled)["steady_points_per_s"])
        flows.append(whole_flow(bootstrap, hours, 1, filled=filled)["steady_points_per_s"])
        shares.append(round(flows[-1] / ceilings[-1], 3) if flows[-1] else None)
    known = [share for share in shares if share is not None]
    result = {
        "points": filled[1],
        "ceiling_steady_points_per_s": ceilings,
        "flow_steady_points_per_s": flows,
        "share": shares,
        "median_share": statistics.median(known) if known else None,
    }
    print(f"(s) share of the JSON ceiling: {result}", flush=True)
    return result


def labels_cost(bootstrap: str, hours: float, pairs: int = 2) -> dict:
    """(l) the whole flow (JSON, 1 process) on points with two labels each (host and region,
    as exporters send them) and on the same points without, in turns on two topics."""
    topics = {"labelled": fill_topic(bootstrap, hours, "json", labels=True)}
    topics["unlabelled"] = fill_topic(bootstrap, hours, "json")
    steady: dict[str, list[int]] = {name: [] for name in topics}
    for _ in range(pairs):
        for name, filled in topics.items():
            steady[name].append(
                whole_flow(bootstrap, hours, 1, filled=filled)["steady_points_per_s"]
            )
    result = {
        "points": topics["labelled"][1],
        **{f"{k}_steady_points_per_s": v for k, v in steady.items()},
    }
    print(f"(l) labelled points: {result}", flush=True)
    return result


def processes_cost(bootstrap: str, hours: float, pairs: int = 3) -> dict:
    """(p) the whole flow (JSON) on one process and on two, in turns on one topic, the first
    of each pair alternating: each pair's ratio (two over one) and the median. Two processes
    share the cores with each other and with the broker, and the machine's speed moves
    within minutes (±20 % between two identical runs): one run of each says little."""
    filled = fill_topic(bootstrap, hours, "json")
    steady: dict[int, list[float]] = {1: [], 2: []}
    for turn in range(pairs):
        for processes in (1, 2) if turn % 2 == 0 else (2, 1):
            result = whole_flow(bootstrap, hours, processes, filled=filled)
            steady[processes].append(result["steady_points_per_s"])
    pairs_run = zip(steady[1], steady[2], strict=True)
    ratios = [round(two / one, 3) for one, two in pairs_run if one and two]
    result = {
        "points": filled[1],
        "one_process_steady_points_per_s": steady[1],
        "two_processes_steady_points_per_s": steady[2],
        "ratio": ratios,
        "median_ratio": statistics.median(ratios) if ratios else None,
    }
    print(f"(p) two processes against one: {result}", flush=True)
    return result


#: What ``bench_kafka.py --only`` runs for each letter of these, and its key in the results.
MEASUREMENTS = {
    "s": ("s_share", share_of_ceiling),
    "f": ("f_store_cost", store_cost),
    "l": ("l_labels", labels_cost),
    "p": ("p_processes", processes_cost),
}
