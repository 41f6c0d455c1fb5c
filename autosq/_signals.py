"""Ctrl-C and SIGTERM held back while a step that must not be cut runs, then let land.

The search turns SIGTERM into an exception (to stop as Ctrl-C does). An exception raised at
the wrong moment is worse than a late one: inside a journal lock's release it left the lock
file behind; inside a fork's at-fork hooks (logging's lock release runs there) Python prints
it as "ignored" and the signal is lost, so a killed search went on. Such steps run under
:func:`signals_held` (or between :meth:`SignalHold.hold` and :meth:`SignalHold.release`).

Handlers are swapped for recorders rather than the signals masked: a mask covers one thread,
and the kernel may hand a process's signal to any other thread (the progress display's), after
which Python still runs the handler in the main thread, mid-step.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

HELD = (signal.SIGINT, signal.SIGTERM)
_ACTIVE: list[SignalHold] = []  # the holds in effect in this process, outermost first


class SignalHold:
    """Records Ctrl-C and SIGTERM from :meth:`hold` to :meth:`release`, then raises each one
    that arrived, once, to the handlers that were in place. Does nothing outside the main
    thread (Python runs handlers only there, and installs them only from there); a second
    :meth:`hold` before the release is a no-op, as is a release without a hold."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] | None = None
        self._arrived: list[int] = []

    @property
    def holding(self) -> bool:
        return self._previous is not None

    @property
    def arrived(self) -> tuple[int, ...]:
        """The signals recorded since the hold, in order."""
        return tuple(self._arrived)

    def hold(self) -> None:
        if self._previous is not None or threading.current_thread() is not threading.main_thread():
            return
        self._arrived = []
        self._previous = {s: signal.signal(s, self._record) for s in HELD}
        _ACTIVE.append(self)

    def _record(self, signum: int, _frame: Any) -> None:
        self._arrived.append(signum)

    def release(self) -> None:
        if self._previous is None:
            return
        previous, self._previous = self._previous, None
        with contextlib.suppress(ValueError):
            _ACTIVE.remove(self)
        _put_back(previous)
        for number in dict.fromkeys(self._arrived):
            signal.raise_signal(number)


def _put_back(previous: dict[int, Any]) -> None:
    for held, handler in previous.items():
        # None: a handler installed outside Python, which cannot be put back; the default
        signal.signal(held, signal.SIG_DFL if handler is None else handler)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block ends, then land as they would have. Nests: an
    inner block hands what arrived to the outer one's recorders."""
    hold = SignalHold()
    hold.hold()
    try:
        yield
    finally:
        hold.release()


def _after_fork_in_child() -> None:
    """A process forked during a hold starts without it, with the handlers that were in place
    before: recorders inherited from the parent would swallow the SIGTERM that ends a pool's
    worker (``Pool.terminate()`` then waits for it forever), and nothing in the child would
    ever release them."""
    if not _ACTIVE:
        return
    previous = _ACTIVE[0]._previous or {}
    for hold in _ACTIVE:
        hold._previous, hold._arrived = None, []
    _ACTIVE.clear()
    with contextlib.suppress(ValueError):  # forked from another thread: Python's rule
        _put_back(previous)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
