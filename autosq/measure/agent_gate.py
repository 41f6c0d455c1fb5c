"""Who the agent lets in, and for how long: connection slots, a per-client share of them, and
a deadline for a request's headers, so that slow or unauthenticated clients cannot starve the
ones with the token.

- At most ``max_connections`` connections at once, of which at most ``per_client`` from one
  address may still be sending their headers (a client whose requests are in, such as many
  workers timing through one agent, is not limited); a connection beyond either is answered
  ``503`` (with ``Retry-After``) and closed, never dropped without an answer.
- A connection must deliver its request line and headers (and, over TLS, its handshake) within
  ``header_seconds`` of being accepted, however it trickles them; one that does not is answered
  ``408`` and closed. A watchdog thread enforces it, so a handler blocked in a read is freed.

Once a request's headers are in, the handler's socket timeout governs the body as before.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import Counter
from typing import Any

MAX_CONNECTIONS = 64
PER_CLIENT = 16
HEADER_SECONDS = 10.0


def quick_answer(sock: Any, status: int, reason: str, message: str) -> None:
    """Answer ``status`` with a JSON error without blocking (the response is a few hundred
    bytes: it fits the socket's buffer), then close the connection."""
    body = json.dumps({"error": message}).encode()
    head = (f"HTTP/1.0 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n")
    with contextlib.suppress(OSError, ValueError):  # (a TLS socket before its handshake)
        sock.setblocking(False)
        sock.send(head.encode() + body)
        sock.recv(1 << 16)  # what the client sent, so that closing does not reset the answer
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class Gate:
    """Slots and header deadlines of the agent's connections (see the module docstring)."""

    def __init__(self, max_connections: int = MAX_CONNECTIONS, per_client: int = PER_CLIENT,
                 header_seconds: float = HEADER_SECONDS) -> None:
        self.max_connections = max_connections
        self.per_client = per_client
        self.header_seconds = header_seconds
        self._lock = threading.Lock()
        self._open = 0
        self._early: Counter[str] = Counter()  # by address: connections sending headers
        # id(socket) -> (socket, address, deadline) of the connections sending headers
        self._waiting: dict[int, tuple[Any, str, float]] = {}
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="autosq-agent-deadlines",
                                          daemon=True)
        self._watchdog.start()

    def admit(self, sock: Any, address: str) -> str | None:
        """Take a slot for a new connection (its header deadline starts now), or say why not."""
        with self._lock:
            if self._open >= self.max_connections:
                return f"the agent is busy: {self.max_connections} connections are open"
            if self._early[address] >= self.per_client:
                return (f"too many connections from {address} are still sending their "
                        f"request ({self.per_client})")
            self._open += 1
            self._early[address] += 1
            self._waiting[id(sock)] = (sock, address, time.monotonic() + self.header_seconds)
        return None

    def _lift(self, sock: Any) -> None:
        entry = self._waiting.pop(id(sock), None)
        if entry is not None:
            self._early[entry[1]] -= 1
            if self._early[entry[1]] <= 0:
                del self._early[entry[1]]

    def headers_in(self, sock: Any) -> None:
        """The connection's request line and headers have arrived: its deadline is lifted."""
        with self._lock:
            self._lift(sock)

    def release(self, sock: Any, address: str) -> None:
        """The connection is done: its slot is free."""
        with self._lock:
            self._lift(sock)
            self._open -= 1

    def _watch(self) -> None:
        while not self._stop.wait(min(0.25, self.header_seconds / 4)):
            now = time.monotonic()
            with self._lock:
                late = [s for s, _, deadline in self._waiting.values() if deadline <= now]
                for s in late:
                    self._lift(s)
            for s in late:
                quick_answer(s, 408, "Request Timeout", "the request's headers did not arrive "
                             f"within {self.header_seconds:g} s")

    def close(self) -> None:
        """Stop the watchdog."""
        self._stop.set()


__all__ = ["HEADER_SECONDS", "MAX_CONNECTIONS", "PER_CLIENT", "Gate", "quick_answer"]
