"""The search's default without data (issue 25): it must not put at the top of its front the
architectures that training ranks worst.

The references are measured, not generated here: default-space architectures trained
stand-alone on the UCI digits at 32 px (``bench/proxy_references.py``; the file names its
budget and date), pairs that differ only in the share of 3x3 filters (0 against 0.5) or only in
the squeeze ratio among them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autosq.accuracy.correlation import kendall
from autosq.accuracy.proxies import DEFAULT_PROXY, PROXIES, proxy_score
from autosq.arch.space import make_config

REFERENCES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "default_space_references.json").read_text())
ARCHS: list[dict[str, Any]] = REFERENCES["archs"]
TRUTH = [float(a["reference_top1"]) for a in ARCHS]


def _scores(proxy: str) -> list[float]:
    return [proxy_score(proxy, make_config(a["values"], 32, 10), seed=0) for a in ARCHS]


def _top(scores: list[float]) -> list[int]:
    """The architectures the proxy puts highest: a quarter of them (at least three)."""
    n = max(3, len(scores) // 4)
    return sorted(range(len(scores)), key=lambda i: -scores[i])[:n]


def test_the_references_are_enough_to_judge() -> None:
    assert len(ARCHS) >= 12 and REFERENCES["space"] == "default"
    assert max(TRUTH) - min(TRUTH) > 0.2  # a spread that a ranking can get right or wrong


def test_the_default_does_not_put_training_s_bottom_quarter_at_the_top() -> None:
    bottom = sorted(TRUTH)[len(TRUTH) // 4]
    top = _top(_scores(DEFAULT_PROXY))
    worst = [ARCHS[i]["values"] for i in top if TRUTH[i] < bottom]
    assert not worst, f"{DEFAULT_PROXY} puts training's bottom quarter at its top: {worst}"


def test_the_default_ranks_at_least_as_well_as_every_other_proxy() -> None:
    taus = {p: kendall(_scores(p), TRUTH) for p in PROXIES}
    assert taus[DEFAULT_PROXY] > 0
    assert taus[DEFAULT_PROXY] >= max(taus.values()) - 0.05, taus  # within noise of the best


@pytest.mark.parametrize("proxy", PROXIES)
def test_the_stored_scores_are_what_autosq_computes(proxy: str) -> None:
    """The file's proxies were computed by the same code (naswot on the data's images, so it
    is not recomputed here)."""
    if proxy == "naswot":
        pytest.skip("naswot scores the data's images, which this test does not have")
    for a, s in zip(ARCHS, _scores(proxy), strict=True):
        assert s == pytest.approx(a["proxies"][proxy], rel=1e-6)
