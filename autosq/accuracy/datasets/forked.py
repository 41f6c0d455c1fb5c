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
from typing import TYPE_CHECKING

from autosq._signals import signals_held

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext
    from multiprocessing.pool import Pool


def reset_signals() -> None:
    """Default SIGTERM (die), ignored SIGINT (the parent decides when to stop)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_pool(context: BaseContext, workers: int) -> Pool:
    """A pool of ``workers`` processes that reset their signals. Ctrl-C and SIGTERM wait while
    it forks (raised inside a fork's at-fork hooks, an exception is printed and lost, and with
    it the signal), then land here, after the pool is closed and its workers have exited."""
    pool: Pool | None = None
    try:
        with signals_held():
            pool = context.Pool(workers, initializer=reset_signals)
    except BaseException:
        if pool is not None:
            # No task was given: closing ends the workers as they finish starting.
            # Terminating them while they start can wait forever (a worker killed holding
            # the queue's lock).
            pool.close()
            pool.join()
        raise
    return pool
