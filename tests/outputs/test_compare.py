"""Comparing devices on one study: nothing retrained or re-sampled, budgets nest, and devices
the study was not timed for are timed now or say what is missing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from util import FAST

from autosq._io import CACHE_ENV
from autosq.errors import AgentError, UsageError
from autosq.outputs.compare import JSON_KEYS, compare_study, parse_budgets
from autosq.searching.run import run_search

Cli = Callable[..., tuple[int, str, str]]
ESTIMATED = ["rpi3b", "rpi4", "rpi5", "jetson-nano"]


@pytest.fixture
def study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[optuna.Study, str]:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    url = f"sqlite:///{tmp_path / 's.db'}"
    run_search(device="rpi4", max_mb=0.5, max_ms=0, space="tiny", trials=10, input_size=32,
               num_classes=10, storage=url, protocol=FAST, retime=False, study="s",
               sampler="random")
    return optuna.load_study(study_name="s", storage=url), url


def test_estimated_devices_reuse_the_study(study: tuple[optuna.Study, str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    st, _ = study
    before = [(t.number, t.values, t.user_attrs["autosq"]["accuracy"]) for t in st.trials]
    import autosq.accuracy.train
    import autosq.searching.evaluate

    def forbidden(*a: Any, **k: Any) -> Any:
        raise AssertionError("nothing may be trained or exported when the study is reused")

    monkeypatch.setattr(autosq.accuracy.train, "fit", forbidden)
    monkeypatch.setattr(autosq.searching.evaluate, "export_model", forbidden)
    c = compare_study(st, ESTIMATED, [0.5], [None], protocol=FAST)
    after = [(t.number, t.values, t.user_attrs["autosq"]["accuracy"]) for t in st.trials]
    assert after == before  # no new trial, nothing re-scored
    assert [r["device"] for r in c.to_json()] == ESTIMATED
    assert all(set(JSON_KEYS) <= set(r) and r["latency_kind"] == "estimated" for r in c.to_json())
    # One architecture, four devices: latencies differ by each device's constant factor.
    ratios = [{n: lat for n, _, lat, _, _ in c.points[d]} for d in ESTIMATED]
    trials = list(ratios[0])
    for other in ratios[1:]:
        factors = [other[n] / ratios[0][n] for n in trials]
        assert max(factors) == pytest.approx(min(factors))
    accs = {d: sorted(p[1] for p in c.points[d]) for d in ESTIMATED}
    assert len({tuple(v) for v in accs.values()}) == 1  # accuracy does not depend on the device


def test_a_larger_budget_never_buys_less(study: tuple[optuna.Study, str]) -> None:
    st, _ = study
    mbs, mss = [0.05, 0.1, 0.2, 0.5], [0.2, 0.5, 1.0, 5.0, None]
    c = compare_study(st, ESTIMATED, mbs, mss, protocol=FAST)
    assert len(c.to_json()) == len(ESTIMATED) * len(mbs) * len(mss)
    for dev in ESTIMATED:
        cell = {(r["max_mb"], r["max_ms"]): r for r in c.to_json() if r["device"] == dev}
        for (mb, ms), r in cell.items():
            for (mb2, ms2), r2 in cell.items():
                if mb2 >= mb and (ms2 is None or (ms is not None and ms2 >= ms)):
                    assert r2["feasible_count"] >= r["feasible_count"]
                    assert (r2["best_accuracy"] or -1) >= (r["best_accuracy"] or -1)
        for r in cell.values():
            if r["trial"] is not None:
                assert r["size_mb"] <= r["max_mb"]
                assert r["max_ms"] is None or r["latency_ms"] <= r["max_ms"]


def test_devices_the_study_was_not_timed_for(study: tuple[optuna.Study, str],
                                             tmp_path: Path) -> None:
    st, _ = study
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "twothreads.toml").write_text(
        'name = "twothreads"\n[budget]\nmax_mb = 1\n[runtime]\nthreads = 2\n'
        '[latency]\nsource = "measured"\n')
    (profiles / "board.toml").write_text(
        'name = "board"\n[budget]\nmax_mb = 1\n[latency]\nsource = "agent"\n'
        'url = "http://127.0.0.1:9"\n')
    c = compare_study(st, ["host", "twothreads"], [0.5], [None], [profiles], protocol=FAST)
    assert any("host: latency measured, the study's timings here" in n for n in c.notes)
    assert any("twothreads: latency measured, timed now" in n for n in c.notes)
    with pytest.raises(AgentError, match="agent"):
        compare_study(st, ["board"], [0.5], [None], [profiles], protocol=FAST)


def test_parse_budgets() -> None:
    assert parse_budgets("5,1,2", "--max-mb") == [1.0, 2.0, 5.0]
    assert parse_budgets(None, "--max-ms") == [None]
    with pytest.raises(UsageError, match="--max-mb must be a number or a comma-separated"):
        parse_budgets("5,big", "--max-mb")
    with pytest.raises(UsageError, match="values must be finite numbers > 0"):
        parse_budgets("0", "--max-ms")


def test_compare_cli_and_api(cli: Cli, study: tuple[optuna.Study, str], tmp_path: Path) -> None:
    _, url = study
    code, out, err = cli("compare", "--devices", "rpi4,rpi5", "--study", "s", "--storage", url,
                         "--max-mb", "0.2,0.5", "--max-ms", "1,10", "--json",
                         "--plot", str(tmp_path / "c.png"), "--csv", str(tmp_path / "c.csv"))
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 8 and all(set(JSON_KEYS) <= set(r) for r in rows)
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "c.csv").read_text().startswith("device,")
    code, out, _ = cli("compare", "--devices", "rpi4,rpi5", "--study", "s", "--storage", url,
                       "--max-mb", "0.2,0.5")
    assert code == 0 and "Best accuracy per" in out
    for args, needle in [(["--devices", "rpi9"], "unknown device 'rpi9'"),
                         (["--devices", "rpi4", "--max-mb", "x"], "--max-mb must be a number")]:
        code, _, err = cli("compare", *args, "--study", "s", "--storage", url)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    import autosq

    result = autosq.compare(devices=["rpi4", "rpi5"], max_mb=[0.5], study="s", storage=url)
    df = result.frame
    assert list(df["device"]) == ["rpi4", "rpi5"] and "best_accuracy" in df.columns
    # the notes that say how each device's latency was obtained are kept
    assert [n.split(":")[0] for n in result.notes if n.startswith("rpi")] == ["rpi4", "rpi5"]
