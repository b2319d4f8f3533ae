"""Nezha evaluation: the loader on a tiny folder of the same layout, and the shared data."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from airis.evals.nezha import (
    WINDOW_S,
    eval_nezha,
    fault_anomalies,
    print_eval_nezha,
    rank_fault,
)
from airis.evals.nezha_data import load_day, service_of

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rca_nezha"

PODS = {
    "frontend": "frontend-5f6585d649-fnmft",
    "cart": "cart-579f59597d-wc2lz",
    "ads": "ads-7b598fc7d-lmggd",
    "mail": "mail-55fdc5b988-f6xth",
}
COLUMNS = (
    "CpuUsage(m),CpuUsageRate(%),MemoryUsage(Mi),PodClientLatencyP90(s),"
    "PodServerLatencyP90(s),PodWorkload(Ops),PodSuccessRate(%),NodeCpuUsageRate(%)"
)
START = datetime(2022, 1, 1, 10, 0, 19, tzinfo=UTC).timestamp()


def _go_time(ts: float, offset: float) -> str:
    # The layout of Nezha's "Time" column: Go's time.Time String(), with a monotonic part.
    stamp = datetime.fromtimestamp(ts, tz=UTC)
    return f"{stamp:%Y-%m-%d %H:%M:%S}.573905004 +0000 UTC m=+{offset:.9f}"


def _day(
    root: Path,
    name: str,
    faults: list[tuple[str, str, str]],
    graph: bool,
    *,
    idle: bool = False,
    busy: tuple[tuple[str, float, float], ...] = (),
) -> Path:
    """90 one-minute rows per pod; each fault ``(inject_time, service, kind)`` makes that
    service's CPU (and the frontend's latency) jump for 4 minutes from a minute after it; a
    ``network_delay`` instead makes the client latency of the service's callers (in the
    graph below) five times longer and leaves the service's own metrics alone. ``idle`` adds
    a pod that serves nothing (latency written as 0, as TrainTicket does) and whose container
    series is missing (CPU and memory 0 in every row). ``busy``: ``(service, from, to)``
    epoch seconds when that service's CPU is high for no listed fault."""
    rng = random.Random(42)
    start = START + (datetime.strptime(name, "%Y-%m-%d").day - 1) * 86_400
    folder = root / name
    metric = folder / "metric"
    metric.mkdir(parents=True)
    inject = [datetime.strptime(t, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
              for t, _, _ in faults]  # fmt: skip
    pods = {**PODS, **({"ledger": "ledger-6c8d9f7b5-x2p4q"} if idle else {})}
    for service, pod in pods.items():
        lines = [f"Time,TimeStamp,PodName,{COLUMNS}"]
        for i in range(90):
            ts = start + 60 * i + rng.uniform(-0.3, 0.3)
            active = [
                (s, k) for t0, (_, s, k) in zip(inject, faults, strict=True) if 0 < ts - t0 < 300
            ]
            hit = (service, "network_delay") not in active and any(s == service for s, _ in active)
            hit = hit or any(s == service and a <= ts < b for s, a, b in busy)
            slow = any(k == "network_delay" and service in CALLERS.get(s, ()) for s, k in active)
            cpu = 20.0 * rng.gauss(1, 0.03) * (4 if hit else 1)
            cells = [cpu * 10, cpu, 200 + rng.gauss(0, 1),
                     0.01 * rng.gauss(1, 0.05) * (5 if slow else 1),
                     0.05 * rng.gauss(1, 0.05), 30 * rng.gauss(1, 0.05), 100.0,
                     50 * rng.gauss(1, 0.05)]  # fmt: skip
            if service == "ledger":
                served = i % 5 == 0
                cells[:5] = [0.0, 0.0, 0.0, 0.0, 0.04 * rng.gauss(1, 0.05) if served else 0.0]
                cells[5] = 0.2 if served else 0.0
            text = ",".join("" if (i == 7 and k == 2) else f"{v:.6g}" for k, v in enumerate(cells))
            # The adservice bug of 2022-08-22: TimeStamp 200,000,000 s too large.
            stamp = int(ts) + (200_000_000 if service == "ads" else 0)
            lines.append(f"{_go_time(ts, 60.0 * i)},{stamp},{pod},{text}")
        (metric / f"{pod}_metric.csv").write_text("\n".join(lines) + "\n")
    front = ["Time,TimeStamp,ServiceName,SuccessRate(%),LatencyP50(s),LatencyP90(s)"]
    for i in range(90):
        ts = start + 60 * i
        hit = any(0 < ts - t0 < 300 for t0 in inject)
        latency = 0.2 * rng.gauss(1, 0.03) * (3 if hit else 1)
        front.append(f"{_go_time(ts, 60.0 * i)},{int(ts)},Frontend,100,0.1,{latency:.4f}")
    (metric / "front_service.csv").write_text("\n".join(front) + "\n")
    if graph:
        (metric / "dependency.csv").write_text(
            "Source,Target,Weight\nfrontend,cart,1\nfrontend,ads,1\ncart,mail,1\n"
            "cart,10.0.0.7,1\nloadgenerator,10.0.0.9,1\n"
        )
    fault_list: dict[str, list[dict[str, str]]] = {}
    for (text, service, kind), t0 in zip(faults, inject, strict=True):
        fault_list.setdefault(text[11:13], []).append({
            "inject_time": text,
            # Wrong by about 8 hours, as on 2023-01-29: must not be used.
            "inject_timestamp": str(int(t0) - 28_800),
            "inject_pod": pods[service],
            "inject_type": kind,
        })  # fmt: skip
    (folder / "fault_list.json").write_text(json.dumps(fault_list))
    return folder


#: Callers of each service in the ``dependency.csv`` that `_day` writes.
CALLERS = {"cart": ("frontend",), "ads": ("frontend",), "mail": ("cart",)}
FAULTS = [("2022-01-01 10:40:03", "cart", "cpu_contention"),
          ("2022-01-01 11:05:41", "mail", "cpu_consumed")]  # fmt: skip


def test_service_of_drops_the_pod_suffixes() -> None:
    assert (
        service_of("ts-admin-basic-info-service-5f55b6cf68-77cfw") == "ts-admin-basic-info-service"
    )
    assert service_of("productcatalogservice-668d5f85fb-wckp8") == "productcatalogservice"


def test_loader_reads_inject_time_and_the_time_column(tmp_path: Path) -> None:
    day = load_day(_day(tmp_path, "2022-01-01", FAULTS, graph=True))
    assert [f.ts for f in day.faults] == [
        datetime(2022, 1, 1, 10, 40, 3, tzinfo=UTC).timestamp(),
        datetime(2022, 1, 1, 11, 5, 41, tzinfo=UTC).timestamp(),
    ]
    assert [(f.service, f.kind) for f in day.faults] == [("cart", "cpu_contention"),
                                                         ("mail", "cpu_consumed")]  # fmt: skip
    assert set(day.metrics) == set(PODS) and day.pods["cart"] == PODS["cart"]
    # Rows are on one minute grid, from the Time column (the ads TimeStamp is 6 years off).
    assert list(day.metrics["ads"].index) == list(day.metrics["cart"].index)
    assert day.metrics["ads"].index[0] == START - 19
    assert day.metrics["cart"].isna().sum().sum() == 1  # the empty cell stays NaN
    # IP addresses and the load generator are not services.
    assert day.graph == {"frontend": {"cart", "ads"}, "cart": {"mail"}, "ads": set(),
                         "mail": set()}  # fmt: skip


def test_scores_never_read_past_the_window(tmp_path: Path) -> None:
    day = load_day(_day(tmp_path, "2022-01-01", FAULTS, graph=True))
    fault = day.faults[0]
    anomalies = fault_anomalies(day, fault)
    assert anomalies["cart"].anomalous and not anomalies["mail"].anomalous
    assert anomalies["cart"].onset is not None and anomalies["cart"].onset >= fault.ts
    # The series ends at injection + WINDOW_S: later rows change nothing.
    cut = {s: f.loc[f.index <= fault.ts + WINDOW_S] for s, f in day.metrics.items()}
    day.metrics = cut
    again = fault_anomalies(day, fault)
    assert again["cart"].magnitude == anomalies["cart"].magnitude


def test_loader_reads_a_zero_as_missing_where_a_live_pod_cannot_measure_zero(
    tmp_path: Path,
) -> None:
    # TrainTicket writes a server latency of 0 for every minute without workload, and 0 CPU
    # and memory in every row for pods whose container series was not collected.
    day = load_day(_day(tmp_path, "2022-01-01", FAULTS, graph=True, idle=True))
    ledger = day.metrics["ledger"]
    assert ledger["CpuUsage(m)"].isna().all() and ledger["MemoryUsage(Mi)"].isna().all()
    served = ledger["PodWorkload(Ops)"] > 0
    assert served.sum() == 18 and (ledger["PodWorkload(Ops)"] == 0).sum() == 72
    assert ledger.loc[~served, "PodServerLatencyP90(s)"].isna().all()
    assert (ledger.loc[served, "PodServerLatencyP90(s)"] > 0.03).all()
    assert ledger["PodClientLatencyP90(s)"].isna().all()
    # Success rates and workloads can be 0: those stay.
    assert (ledger["PodSuccessRate(%)"] == 100).all()
    result = eval_nezha(tmp_path)
    assert [o["rank"] for o in result["outcomes"]] == [1, 1]


def test_a_network_delay_is_found_through_its_callers_client_latency(tmp_path: Path) -> None:
    # The delayed service's own metrics show nothing; its caller's client latency does, and
    # that is the callee's evidence, not the caller's.
    day = load_day(_day(tmp_path, "2022-01-01", [(FAULTS[0][0], "mail", "network_delay")], True))
    fault = day.faults[0]
    anomalies = fault_anomalies(day, fault)
    assert anomalies["mail"].anomalous and "callers" in anomalies["mail"].detail
    assert not anomalies["cart"].anomalous
    assert rank_fault(day, fault)[0] == "mail"


def test_an_anomaly_already_under_way_at_the_injection_is_not_its_onset(tmp_path: Path) -> None:
    t0 = datetime(2022, 1, 1, 10, 40, 3, tzinfo=UTC).timestamp()
    folder = _day(
        tmp_path, "2022-01-01", FAULTS[:1], graph=True, busy=(("ads", t0 - 600, t0 + 400),)
    )
    day = load_day(folder)
    anomalies = fault_anomalies(day, day.faults[0])
    assert anomalies["ads"].magnitude > 5 and anomalies["ads"].onset is None
    assert anomalies["cart"].onset is not None and anomalies["cart"].onset >= t0
    assert rank_fault(day, day.faults[0])[0] == "cart"


def test_eval_nezha_ranks_with_and_without_a_call_graph(tmp_path: Path) -> None:
    _day(tmp_path, "2022-01-01", FAULTS, graph=True)
    _day(tmp_path, "2022-01-02", [(t.replace("01-01", "01-02"), s, k) for t, s, k in FAULTS],
         graph=False)  # fmt: skip
    result = eval_nezha(tmp_path)
    assert [o["rank"] for o in result["outcomes"]] == [1, 1, 1, 1]
    assert set(result["systems"]) == {"2022-01-01", "2022-01-02"}
    entry = result["systems"]["2022-01-01"]
    assert entry["AS@1"] == 1.0 and entry["by_type"]["cpu_consumed"]["n"] == 1
    rows = {(r["metric"], r["dataset"]) for r in result["scoreboard"]}
    assert ("AS@5", "nezha/2022-01-02") in rows and len(rows) == 6
    buf = io.StringIO()
    print_eval_nezha(result, Console(file=buf, width=120))
    assert "cpu_contention" in buf.getvalue()


@pytest.mark.slow
def test_eval_nezha_on_the_shared_data() -> None:
    assert (DATA / "2022-08-22" / "fault_list.json").exists(), f"Nezha data missing at {DATA}"
    result = eval_nezha(DATA)
    systems = result["systems"]
    assert systems["OnlineBoutique"]["n"] == 56 and systems["TrainTicket"]["n"] == 45
    ob = systems["OnlineBoutique"]
    assert ob["AS@1"] <= ob["AS@3"] <= ob["AS@5"]
    # Pod metrics only: well above the published metric-based MicroRCA (16.1 % AS@1) on the
    # system tuned on; CPU faults, which show in the pod's own metrics, mostly first; network
    # delays, which show in the callers' client latency, mostly in the top 5.
    assert ob["AS@1"] > 0.45 and ob["AS@5"] > 0.75
    assert ob["by_type"]["cpu_contention"]["AS@3"] >= 0.75
    assert ob["by_type"]["network_delay"]["AS@5"] >= 0.5
    # The loader audit of TrainTicket (held out): a CPU fault's root pod, whose CPU visibly
    # jumps, must be found (at chance level, 1 in 46, before the audit's fixes).
    assert systems["TrainTicket"]["by_type"]["cpu_contention"]["AS@3"] >= 0.75
    board = {(r["metric"], r["dataset"]): r["tuned_on"] for r in result["scoreboard"]}
    assert board[("AS@1", "nezha/OnlineBoutique")] is True
    assert board[("AS@5", "nezha/TrainTicket")] is False


def test_cli_parses_eval_nezha() -> None:
    from airis.cli.evaluate import build_parser as _parser

    args = _parser().parse_args(["nezha", "--data", "x", "--json", "o.json"])
    assert args.data == Path("x") and args.json == Path("o.json")
