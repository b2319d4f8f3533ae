"""AIRIS-MON: a streaming AIOps engine."""

__version__ = "0.1.0"
