"""Doctests collected from the top-level folders run in the installed modules (`conftest.py`).

A folder's file imported under the folder's name must be the very module the package installs:
a second copy would keep state of its own and cache compiled functions under a module name
that exists only inside pytest.
"""

from __future__ import annotations

import importlib
import sys

import pytest


@pytest.mark.parametrize(
    "name", ["operators.windowing.open_windows", "sources.fast_point", "flows.detection"]
)
def test_a_folder_module_is_the_installed_module(name: str) -> None:
    module = importlib.import_module(name)
    assert module is importlib.import_module(f"airis.{name}")
    assert module.__name__ == f"airis.{name}"
    assert sys.modules[name] is module
