"""Doctests in the repository's top-level folders run in the installed modules.

Collected from ``operators/`` (and the other folders), a doctest would otherwise import its file
a second time under the folder's name (``operators.windowing.open_windows`` beside
``airis.operators.windowing.open_windows``). Two module objects for one file mean two copies of
module state, classes that fail ``isinstance`` against each other, and numba caches written
under a module name that only exists inside pytest: a compiled function cached by a doctest
then fails to load in ``airis run``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

#: The folders installed under the ``airis`` namespace (pyproject's ``package-dir``).
_INSTALLED_AS_AIRIS = frozenset({"operators", "flows", "sinks", "sources", "models"})


class _InstalledModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``operators.x`` as the module ``airis.operators.x`` itself."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] not in _INSTALLED_AS_AIRIS:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec) -> ModuleType:
        return importlib.import_module(f"airis.{spec.name}")

    def exec_module(self, module: ModuleType) -> None:
        pass  # already executed, under its installed name


sys.meta_path.insert(0, _InstalledModules())
