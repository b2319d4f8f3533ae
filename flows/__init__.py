"""Bytewax dataflows: each module wires sources, operators and sinks, top to bottom."""
