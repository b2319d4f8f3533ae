"""Engine-agnostic stream logic: plain classes that learn from and score one event at a time.

Nothing here imports Bytewax (a test enforces it), so every operator is unit-testable and
reusable under another engine. Scores are in ``[0, 1]``, high means anomalous, and a detector
that is still warming up says so in its `~airis.operators.types.Assessment`.
"""
