"""``python -m autosq``: the same as the ``autosq`` console script."""

from autosq.cli import run

run()
