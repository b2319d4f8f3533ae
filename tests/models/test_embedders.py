"""The Ollama embedder and the fallback to hashing when Ollama is not reachable."""

from __future__ import annotations

import logging
import socket

import pytest

from airis.models.embedders import OllamaEmbedder, make_embedder
from airis.operators.incidents.incident_embedding import HashingEmbedder
from airis.settings import Settings


def test_without_ollama_url_the_embedder_is_hashing():
    assert isinstance(make_embedder(Settings(ollama_url=None).memory), HashingEmbedder)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: nothing listens there


def test_unreachable_ollama_falls_back_to_hashing_and_warns_once(caplog):
    # A real connection attempt to a closed local port, not a mock. The success path (a running
    # Ollama with nomic-embed-text pulled) cannot run here: no Ollama server is available.
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ConnectionError):
        OllamaEmbedder(url, timeout=5.0)

    settings = Settings(ollama_url=url, ollama_model="nomic-embed-text")
    with caplog.at_level(logging.WARNING, logger="airis.models.embedders"):
        first = make_embedder(settings.memory, timeout=5.0)
        second = make_embedder(settings.memory, timeout=5.0)
    assert isinstance(first, HashingEmbedder)
    assert isinstance(second, HashingEmbedder)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "falling back to hashing" in warnings[0].getMessage()
    assert url in warnings[0].getMessage()
