# AIRIS-MON tasks. `deploy/bootstrap.sh setup` creates .venv; just itself comes from PyPI (rust-just).
set positional-arguments
venv := justfile_directory() / ".venv/bin"

default:
    @just --list

# Create or update the virtual environment.
setup:
    deploy/bootstrap.sh setup

# Lint, then the whole test suite (what CI runs).
test *args:
    {{venv}}/ruff check .
    {{venv}}/pytest -q "$@"

# Lint, then the tests that need no external part and are not slow (a couple of minutes).
test-fast *args:
    {{venv}}/ruff check .
    {{venv}}/pytest -q -m "not integration and not slow" "$@"

# Lint and format check.
lint:
    {{venv}}/ruff check .
    {{venv}}/ruff format --check .

# Format the code.
fmt:
    {{venv}}/ruff format .
    {{venv}}/ruff check --fix .

# Simulate, detect, store and score the main demo.
demo *args:
    {{venv}}/airis demo "$@"

# Apply ClickHouse migrations.
migrate:
    {{venv}}/airis db migrate

# Everything behind BENCHMARKS.md: the demo, `airis detect` on NAB, the detector, ONNX scoring,
# forecasting and drift, then the dashboards' queries and Kafka.
bench: && bench-dashboards bench-kafka
    mkdir -p var/bench
    {{venv}}/airis demo --json var/bench/demo.json
    {{venv}}/airis detect --input ../shared/data/nab/data/realKnownCause/machine_temperature_system_failure.csv --output var/bench/machine_temperature_system_failure.csv
    {{venv}}/python benchmarks/bench_detector.py
    {{venv}}/python benchmarks/bench_detection_flow.py
    {{venv}}/python benchmarks/bench_signals.py
    {{venv}}/python benchmarks/bench_per_call.py
    {{venv}}/python benchmarks/bench_onnx.py --json var/bench/onnx.json
    {{venv}}/python benchmarks/bench_forecast.py
    {{venv}}/python benchmarks/bench_model_ops.py

# Every dashboard query on a demo store plus 10M metric rows: p50/p95/max (issue 15).
bench-dashboards *args:
    {{venv}}/python benchmarks/bench_dashboards.py --json var/bench/dashboards.json "$@"

# Kafka (a)-(e): decode ceiling, flow on 1 and 2 processes, latency, memory; with --only: (f) the store's share, (s) the share of the ceiling, (l) labels, (p) two processes against one, in turns.
bench-kafka *args:
    {{venv}}/python benchmarks/bench_kafka.py --json var/bench/kafka.json "$@"

# The Kafka metrics flow's main-thread CPU per step, beside the ceiling's (issue 13; --store on|off|no-insert, --wire json|otlp).
bench-flow-steps *args:
    {{venv}}/python benchmarks/bench_flow_steps.py --json var/bench/flow_steps.json "$@"

# Start the local Kafka broker (deploy/kafka/kafka.sh up [--port P] [--dir D]); prints the bootstrap.
kafka-up *args:
    deploy/kafka/kafka.sh up "$@"

# Stop the local Kafka broker (deploy/kafka/kafka.sh down [--dir D]).
kafka-down *args:
    deploy/kafka/kafka.sh down "$@"

# Quality on every shared dataset and the simulator, then one scoreboard (tuned on vs not
# tuned on) in var/bench/scoreboard.json; BENCHMARKS.md has the table. Takes about an hour.
eval:
    mkdir -p var/bench
    {{venv}}/airis eval univariate --json var/bench/univariate.json
    {{venv}}/airis eval multivariate --json var/bench/multivariate.json
    {{venv}}/airis eval logs --json var/bench/logs.json
    {{venv}}/airis eval petshop --json var/bench/petshop.json
    {{venv}}/airis eval nezha --json var/bench/nezha.json
    {{venv}}/airis eval cold-start --json var/bench/cold_start.json
    {{venv}}/airis eval forecast --json var/bench/forecast.json
    {{venv}}/airis eval rca --faults 60 --end 2026-12-01T00:00:00Z --json var/bench/rca60.json
    {{venv}}/airis eval rca --faults 60 --first-seed 101 --end 2026-12-01T00:00:00Z --json var/bench/rca60_heldout.json
    {{venv}}/airis eval scoreboard var/bench/univariate.json var/bench/multivariate.json var/bench/logs.json var/bench/petshop.json var/bench/nezha.json var/bench/cold_start.json var/bench/rca60.json var/bench/rca60_heldout.json --json var/bench/scoreboard.json
