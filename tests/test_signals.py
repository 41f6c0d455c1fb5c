"""Ctrl-C and SIGTERM held back during steps that must not be cut: recorded, then raised once
to the handlers that were in place, whichever thread the kernel handed them to."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from autosq._signals import SignalHold, signals_held


def test_a_held_sigterm_lands_on_release(raising_sigterm: type[Exception]) -> None:
    hold = SignalHold()
    hold.hold()
    signal.raise_signal(signal.SIGTERM)
    signal.raise_signal(signal.SIGTERM)
    assert hold.holding
    with pytest.raises(raising_sigterm):
        hold.release()
    assert not hold.holding
    hold.release()  # once: nothing more lands
    with pytest.raises(raising_sigterm):  # the search's handler is back
        signal.raise_signal(signal.SIGTERM)


def test_nothing_arrived_nothing_raised(raising_sigterm: type[Exception]) -> None:
    with signals_held():
        pass
    hold = SignalHold()
    hold.release()  # without a hold: nothing


def test_nested_holds_land_after_the_outer(raising_sigterm: type[Exception]) -> None:
    outer = SignalHold()
    outer.hold()
    outer.hold()  # a second hold changes nothing
    with signals_held():
        signal.raise_signal(signal.SIGTERM)
    assert outer.holding  # the inner block handed it to the outer recorder
    with pytest.raises(raising_sigterm):
        outer.release()


def test_ctrl_c_is_held_too() -> None:
    with pytest.raises(KeyboardInterrupt), signals_held():
        signal.raise_signal(signal.SIGINT)
        done = True
    assert done


def test_a_signal_handed_to_another_thread_is_held(raising_sigterm: type[Exception]) -> None:
    # A thread's mask would not do: the handler runs in the main thread whichever thread the
    # signal was delivered to.
    hold = SignalHold()
    hold.hold()
    done = threading.Event()
    helper = threading.Thread(target=done.wait)  # alive until told: no timing luck
    helper.start()
    assert helper.ident is not None
    signal.pthread_kill(helper.ident, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while not hold.arrived and time.monotonic() < deadline:
        time.sleep(0.001)  # bytecode runs: an unheld handler would raise here
    done.set()
    helper.join()
    assert hold.arrived == (signal.SIGTERM,)
    with pytest.raises(raising_sigterm):
        hold.release()


def test_outside_the_main_thread_it_does_nothing() -> None:
    seen: list[bool] = []

    def other() -> None:
        hold = SignalHold()
        hold.hold()
        seen.append(hold.holding)
        hold.release()

    helper = threading.Thread(target=other)
    helper.start()
    helper.join()
    assert seen == [False]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_during_a_hold_starts_with_the_handlers_before_it(
        raising_sigterm: type[Exception]) -> None:
    # Inherited recorders swallowed the SIGTERM that ends a pool's worker: Pool.terminate()
    # then waited for it forever (seen under load).
    before = signal.getsignal(signal.SIGTERM)
    with signals_held():
        pid = os.fork()
        if pid == 0:  # the child: the handler from before the hold, no hold left
            ok = signal.getsignal(signal.SIGTERM) is before
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert signal.getsignal(signal.SIGTERM) is before
