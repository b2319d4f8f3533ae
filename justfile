# AIRIS-MON tasks. `deploy/bootstrap.sh setup` creates .venv; just itself comes from PyPI (rust-just).
set positional-arguments
venv := justfile_directory() / ".venv/bin"

default:
    @just --list

# Create or update the virtual environment.
setup:
    deploy/bootstrap.sh setup

# The whole test suite (what CI runs).
test *args:
    {{venv}}/pytest -q "$@"

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
