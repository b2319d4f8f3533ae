"""Files of a model registry: atomic writes, artifact hashes, canonical JSON, the
training-data fingerprint and the code version a model was made with."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from airis.models.registry_records import (
    RegistryError,
)

_CHUNK = 1 << 20


def fingerprint_array(a: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes (C order): the training-data fingerprint.

    >>> fingerprint_array(np.zeros((2, 3)))[:12]
    '4c564769e8be'
    >>> fingerprint_array(np.zeros((3, 2))) == fingerprint_array(np.zeros((2, 3)))
    False
    """
    arr = np.ascontiguousarray(a)
    digest = hashlib.sha256()
    digest.update(arr.dtype.str.encode())
    digest.update(repr(arr.shape).encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()


def code_version() -> str:
    """The code's version: ``git describe --always --dirty`` of this repository if it is a
    git checkout, else the installed package version (``airis-mon 0.1.0``)."""
    repo = Path(__file__).resolve().parents[1]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "-C", str(repo), "describe", "--always", "--dirty", "--tags"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        if done.stdout.strip():
            return f"git:{done.stdout.strip()}"
    try:
        return f"airis-mon {metadata.version('airis-mon')}"
    except metadata.PackageNotFoundError:
        return "unknown"


def canonical_json(obj: Any) -> bytes:
    try:
        return orjson.dumps(
            obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_SORT_KEYS
        )
    except TypeError as exc:
        raise RegistryError(f"params/metrics must be JSON-serializable: {exc}") from exc


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then move it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp made it private
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_artifact(path: Path, src: bytes | Path) -> str:
    """Write one artifact (bytes, or a copy of a file); return its sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        if isinstance(src, bytes | bytearray | memoryview):
            digest.update(src)
            out.write(src)
        else:
            with Path(src).open("rb") as f:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        return "missing"
    return digest.hexdigest()
