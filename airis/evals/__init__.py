"""Evaluations: quality on the public datasets of ``../shared/data`` and on simulated faults.

One module per benchmark. A module with a ``register(benchmarks)`` function adds its own
``airis eval`` subcommand (`airis.cli.evaluate` finds it), so a new evaluation is one module
here. Each reports its numbers twice where it can, tuned on and not tuned on
(`airis.evals.scoreboard`), and ``airis eval scoreboard`` joins their JSON into one board.
"""
