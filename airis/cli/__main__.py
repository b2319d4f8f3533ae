"""``python -m airis.cli``: the ``airis`` command."""

import sys

from airis.cli import entry

sys.exit(entry())
