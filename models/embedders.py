"""Embedders backed by a model server: `OllamaEmbedder`, and `make_embedder`, which picks the
embedder the settings ask for and falls back to `HashingEmbedder` when Ollama is not reachable,
so a missing model server never stops the engine.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from airis.operators.incidents.incident_embedding import Embedder, HashingEmbedder
from airis.settings import MemoryConfig, redact

logger = logging.getLogger(__name__)

__all__ = ["OllamaEmbedder", "make_embedder"]


class OllamaEmbedder:
    """Embeddings from a model served by Ollama (``nomic-embed-text`` by default).

    The constructor embeds one probe text, which tells the dimension and fails fast (with
    ``ConnectionError`` or ``ollama.ResponseError``) when the server is down or lacks the model;
    `make_embedder` turns that failure into a fallback.
    """

    def __init__(self, url: str, model: str = "nomic-embed-text", timeout: float = 10.0) -> None:
        import ollama  # imported here: only deployments that set AIRIS_OLLAMA_URL need it

        self._client = ollama.Client(host=url, timeout=timeout)
        self._model = model
        self._dim = len(self.embed(["airis dimension probe"])[0])

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def name(self) -> str:
        return f"ollama:{self._model}"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        response = self._client.embed(model=self._model, input=list(texts))
        return [list(map(float, v)) for v in response.embeddings]


_warned: set[str] = set()
_warned_lock = threading.Lock()


def make_embedder(config: MemoryConfig, **ollama_kwargs: Any) -> Embedder:
    """The embedder ``config`` asks for: Ollama when ``AIRIS_OLLAMA_URL`` is set and the
    server answers, else `HashingEmbedder` (with one warning per process and server).

    >>> make_embedder(MemoryConfig(ollama_url=None)).name
    'hashing-v1-256'
    """
    if not config.ollama_url:
        return HashingEmbedder()
    try:
        return OllamaEmbedder(config.ollama_url, config.ollama_model, **ollama_kwargs)
    except Exception as exc:  # ConnectionError, httpx errors, ResponseError (model not pulled)
        # Broad on purpose: any failure of an optional model server must not stop the engine.
        key = f"{config.ollama_url}|{config.ollama_model}"
        with _warned_lock:
            first = key not in _warned
            _warned.add(key)
        if first:
            logger.warning(
                "Ollama at %s (model %s) is not usable (%s: %s); falling back to hashing "
                "embeddings, which are not comparable with vectors stored by the model",
                redact(config.ollama_url),
                config.ollama_model,
                type(exc).__name__,
                exc,
            )
        return HashingEmbedder()
