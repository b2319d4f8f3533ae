"""`airis eval`: every module of `airis.evals` with a ``register`` is a benchmark."""

from __future__ import annotations

import sys

import pytest

from airis import evals
from airis.cli import main
from airis.cli.evaluate import benchmarks, build_parser


def test_every_shipped_benchmark_registers_itself():
    names = {m.__name__.rpartition(".")[2] for m in benchmarks()}
    assert names >= {"cold_start", "forecast", "logs", "multivariate", "nab", "nezha"}
    assert names >= {"petshop", "rca", "scoreboard", "univariate"}
    assert "nab_scorer" not in names  # a helper module registers nothing


def test_a_new_evaluation_is_one_module(tmp_path, monkeypatch, capsys):
    (tmp_path / "toy_benchmark.py").write_text(
        "def register(benchmarks):\n"
        "    parser = benchmarks.add_parser('toy', help='a toy benchmark')\n"
        "    parser.add_argument('--n', type=int, default=3)\n"
        "    parser.set_defaults(run=lambda args: print('toy', args.n * 2))\n"
    )
    monkeypatch.setattr(evals, "__path__", [*evals.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "airis.evals.toy_benchmark", raising=False)
    assert build_parser().parse_args(["toy", "--n", "5"]).n == 5
    assert main(["eval", "toy", "--n", "4"]) == 0
    assert capsys.readouterr().out.strip() == "toy 8"


def test_eval_help_lists_the_benchmarks(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "petshop" in out and "cold-start" in out


def test_an_unknown_benchmark_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "no-such-benchmark"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
