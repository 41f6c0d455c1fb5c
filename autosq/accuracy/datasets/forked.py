"""What a process forked to prepare images does first.

A fork inherits the parent's signal handlers. The search installs one for SIGTERM that raises
``Terminated`` (to stop like Ctrl-C); in a pool worker that handler turns ``Pool.terminate()``
into an exception raised wherever the worker happens to be, possibly while it holds the pool's
queue lock, and the parent then waits forever for the worker that waits on the lock (seen as a
search hanging after "decoding images into the cache"). A helper process therefore dies on
SIGTERM as the default says, and leaves Ctrl-C to its parent.
"""

from __future__ import annotations

import signal


def reset_signals() -> None:
    """Default SIGTERM (die), ignored SIGINT (the parent decides when to stop)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
