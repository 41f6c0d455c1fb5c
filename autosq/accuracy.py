"""Where a candidate's accuracy objective comes from.

- :class:`ProxyAccuracy`: a zero-cost proxy score of the untrained network (kind ``proxy``);
  a score, not a percentage: only its ranking means something.
- Trained validation top-1 on the user's data (kind ``val_top1``) lives in :mod:`autosq.train`.
"""

from __future__ import annotations

from typing import Any

from autosq.arch import SqueezeNetConfig

DEFAULT_PROXY = "synflow"


class ProxyAccuracy:
    """Scores candidates with a zero-cost proxy (see :mod:`autosq.proxies`)."""

    kind = "proxy"
    expensive = False

    def __init__(self, name: str = DEFAULT_PROXY) -> None:
        from autosq.proxies import PROXIES

        if name not in PROXIES:
            from autosq.errors import UsageError

            raise UsageError(f"unknown proxy {name!r}; known proxies: {', '.join(PROXIES)}")
        self.name = name

    def score(self, config: SqueezeNetConfig, seed: int) -> tuple[float, dict[str, Any]]:
        from autosq.proxies import proxy_score

        return proxy_score(self.name, config, seed=seed), {"proxy": self.name}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "proxy": self.name}
