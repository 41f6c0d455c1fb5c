"""What a client asks the agent (:mod:`autosq.measure.agent_server`), read and checked: the
timing settings and protocol from the query, a batch's model sizes, the token's form."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, fields
from typing import Any

from autosq.errors import UsageError
from autosq.measure.protocol import AGENT_MAX_BATCH as MAX_BATCH
from autosq.measure.protocol import TimingProtocol

GRAPH_OPTIMIZATIONS = ("disable", "basic", "extended", "all")


class BadRequest(Exception):
    """A request the agent refuses, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _number(query: dict[str, str], name: str, kind: type, default: Any,
            low: float, high: float = math.inf) -> Any:
    if name not in query:
        return default
    text = query[name]
    what = "an integer" if kind is int else "a number"
    if not text.isascii() or len(text) > 40:
        raise BadRequest(400, f"{name} must be {what}; got {text[:40]!r}")
    try:
        value = kind(text)
        if not (math.isfinite(value) and low <= value <= high):
            raise OverflowError
    except ValueError:
        raise BadRequest(400, f"{name} must be {what}; got {text!r}") from None
    except OverflowError:
        bounds = f"from {low:g} to {high:g}" if math.isfinite(high) else f">= {low:g}"
        raise BadRequest(400, f"{name} must be a finite number {bounds}; got {text}") from None
    return value


def protocol_from_query(query: dict[str, str]) -> TimingProtocol:
    """The timing protocol a client sent as query parameters (defaults for those left out),
    each field checked."""
    values: dict[str, Any] = {}
    for f in fields(TimingProtocol):
        is_int = f.type in ("int", int)
        value = _number(query, f.name, int if is_int else float, None, 1 if is_int else 0)
        if value is not None:
            values[f.name] = value
    return TimingProtocol(**values)


class TimingRequest:
    """One request's settings, read from its query and checked."""

    def __init__(self, query: dict[str, str]) -> None:
        known = {f.name for f in fields(TimingProtocol)} | {
            "threads", "graph_optimization", "budget_ms", "input_size", "fresh", "sizes"}
        unknown = sorted(set(query) - known)
        if unknown:
            raise BadRequest(400, f"unknown parameter {unknown[0]!r}; known: "
                                  f"{', '.join(sorted(known))}")
        cores = os.cpu_count() or 1
        self.threads: int = _number(query, "threads", int, 1, 1, cores)
        self.graph_optimization = query.get("graph_optimization", "all")
        if self.graph_optimization not in GRAPH_OPTIMIZATIONS:
            raise BadRequest(400, f"graph_optimization must be one of "
                                  f"{', '.join(GRAPH_OPTIMIZATIONS)}; got "
                                  f"{self.graph_optimization!r}")
        self.budget_ms: float | None = _number(query, "budget_ms", float, None, 0)
        self.input_size: int | None = _number(query, "input_size", int, None, 1, 100_000)
        fresh = query.get("fresh", "0").lower()
        if fresh not in ("0", "1", "false", "true"):
            raise BadRequest(400, f"fresh must be 0 or 1; got {fresh[:40]!r}")
        self.fresh = fresh in ("1", "true")
        self.protocol = protocol_from_query(query)

    def key(self, models: list[bytes], device: str) -> str:
        """The result cache's key: the models, every setting, the device."""
        parts = [hashlib.sha256(m).hexdigest() for m in models]
        settings = {"threads": self.threads, "graph_optimization": self.graph_optimization,
                    "budget_ms": self.budget_ms, "input_size": self.input_size,
                    "protocol": asdict(self.protocol), "device": device}
        return hashlib.sha256(json.dumps([parts, settings], sort_keys=True).encode()).hexdigest()


def batch_sizes(text: str | None) -> list[int]:
    parts = (text or "").split(",")
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise BadRequest(400, f"sizes must be the models' byte counts, comma-separated; got "
                              f"{(text or '')[:60]!r}")
    counts = [int(p) for p in parts]
    if not 1 <= len(counts) <= MAX_BATCH or min(counts) <= 0:
        raise BadRequest(400, f"sizes must be 1 to {MAX_BATCH} positive byte counts; got "
                              f"{(text or '')[:60]!r}")
    return counts


def split_batch(body: bytes, sizes: list[int]) -> list[bytes]:
    out, pos = [], 0
    for n in sizes:
        out.append(body[pos:pos + n])
        pos += n
    return out


MIN_TOKEN = 16


def check_token(token: str) -> None:
    """Refuse a token that is short, or not printable ASCII without spaces (HTTP headers carry
    it; ``openssl rand -hex 32`` makes a good one)."""
    if len(token) < MIN_TOKEN or not token.isascii() or not token.isprintable() \
            or any(c.isspace() for c in token):
        raise UsageError(f"AUTOSQ_AGENT_TOKEN must be at least {MIN_TOKEN} printable ASCII "
                         "characters without spaces (for example `openssl rand -hex 32`)")
