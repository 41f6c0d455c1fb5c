"""The timing child process (``python -m autosq.measure.worker MAX_BYTES``): limits itself,
then serves timing requests from :class:`autosq.measure.contained.TimingProcess` over stdin and
stdout until its input ends."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Any


def _contain(max_bytes: int) -> None:
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
    except (ValueError, OSError):
        sys.exit(3)  # the parent says: cannot limit memory to that
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop


def _serve(header: dict[str, Any], blobs: list[bytes]) -> dict[str, Any]:
    from autosq.measure.limits import Limits
    from autosq.measure.local import LocalTimer
    from autosq.measure.protocol import TimingProtocol

    t = header["timer"]
    # The parent's memory limit (this process's address-space cap): time_many sizes its groups
    # of sessions by it.
    limits = Limits(max_memory_mb=t["max_memory_mb"]) if t.get("max_memory_mb") else None
    timer = LocalTimer(t["threads"], t["provider"], t["graph_optimization"],
                       TimingProtocol(**t["protocol"]), input_size=t["input_size"],
                       contained=False, max_input_mb=t["max_input_mb"], limits=limits)
    if header["op"] == "time":
        results = [timer.time_here(blobs[0], header.get("budget_ms"))]
    else:
        results = timer.time_many_here(blobs)  # names the model that fails
    return {"results": [r.to_dict() for r in results]}


def main() -> None:
    """Serve until stdin closes."""
    from autosq.errors import AutosqError
    from autosq.measure.contained import read_frame, write_frame

    _contain(int(sys.argv[1]))
    if os.getppid() != int(sys.argv[2]):  # the parent died before the death signal was armed
        return
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    import onnxruntime  # noqa: F401  - the cost of starting is paid before the ready frame

    write_frame(out, {"ready": True})
    while (frame := read_frame(inp)) is not None:
        header, blobs = frame
        try:
            answer = _serve(header, blobs)
        except AutosqError as exc:
            answer = {"error": str(exc)}
        except MemoryError:
            answer = {"error": "the model needs more memory than the timing process may use"}
        except Exception as exc:  # a model ONNX Runtime chokes on: say so, keep serving
            answer = {"error": f"ONNX Runtime failed on the model: {exc}"}
        write_frame(out, answer)


if __name__ == "__main__":
    main()
