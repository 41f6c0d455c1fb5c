"""``autosq report``: the study page, built from a real study, checked in a real headless
browser (Debian's chromium; `.ci/run` installs it, and these tests say so when it is missing):
no script error, no network request, every front member drawn, the recommended one named,
and selecting a member shows its card."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from util import FAST

from autosq.outputs.page import MAX_PAGE_BYTES
from autosq.searching.run import run_search

Cli = Callable[..., tuple[int, str, str]]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                   "(.ci/run installs it: apt-get install chromium)")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Any]:
    folder = tmp_path_factory.mktemp("page")
    url = f"sqlite:///{folder / 's.db'}"
    result = run_search(device="host", max_mb=0.2, max_ms=50.0, space="tiny", trials=14,
                        input_size=32, num_classes=10, storage=url, protocol=FAST, seed=3,
                        sampler="random")
    assert len(result.members) >= 2
    return result.study_name, url, result


def dom(page: Path, fragment: str = "") -> str:
    assert CHROMIUM is not None
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update",
         "--dump-dom", page.as_uri() + fragment],
        capture_output=True, text=True, timeout=120, check=True)
    return proc.stdout


def body(text: str) -> dict[str, str]:
    tag = re.search(r"<body([^>]*)>", text)
    assert tag is not None
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag.group(1)))


def test_the_page_is_self_contained(cli: Cli, study: tuple[str, str, Any],
                                    tmp_path: Path) -> None:
    name, url, result = study
    out = tmp_path / "r.html"
    code, text, err = cli("report", "--study", name, "--storage", url, "--out", str(out))
    assert code == 0, err
    page = out.read_text()
    assert len(page.encode()) < MAX_PAGE_BYTES and "wrote" in text
    assert not re.search(r'(src|href)\s*=\s*"', page)  # nothing loaded from anywhere
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>',
                                page, re.S).group(1))  # type: ignore[union-attr]
    assert [m["trial"] for m in data["members"]] == [m.trial for m in result.members]
    assert data["recommended"] == result.recommended.trial
    assert len(data["trials"]) == result.counts.trials
    assert all(m["layers"] and m["export"].startswith("autosq export") for m in data["members"])
    assert all(f"--storage {result.storage} " in m["export"] for m in data["members"])


@needs_browser
def test_the_page_renders_in_a_browser_and_selects_members(study: tuple[str, str, Any],
                                                           tmp_path: Path) -> None:
    from autosq.outputs.page import write_report

    name, url, result = study
    out = tmp_path / "r.html"
    write_report(study=name, out=out, storage=url)
    text = dom(out)
    attrs = body(text)
    assert attrs.get("data-ok") == "1" and "data-error" not in attrs, attrs
    assert attrs.get("data-resources") == "0" and "data-violations" not in attrs, attrs
    drawn = set(re.findall(r'id="pt-(\d+)"', text))
    assert drawn == {str(m.trial) for m in result.members}  # every member in the plot
    rec = result.recommended.trial
    assert f"Recommended: Trial {rec}" in text and f'data-trial="{rec}"' in text
    other = next(m.trial for m in result.members if m.trial != rec)
    selected = dom(out, f"#trial={other}")
    assert re.search(rf'id="card"[^>]*data-trial="{other}"', selected)
    assert f"Trial {other}</h3>" in selected and f"--trial {other} --out" in selected


def test_bad_inputs(cli: Cli, study: tuple[str, str, Any], tmp_path: Path) -> None:
    name, url, _ = study
    for args, needle in (
        (["--study", "nosuch", "--storage", url, "--out", str(tmp_path / "a.html")],
         "no study 'nosuch'"),
        (["--study", name, "--storage", url, "--out", str(tmp_path)], "--out"),
        (["--study", name, "--storage", url, "--out", str(tmp_path / "a.txt")], ".html"),
        (["--study", name, "--storage", url, "--out", "/proc/a.html"], "cannot write"),
        (["--study", name, "--storage", url, "--out", str(tmp_path / "a.html"), "--devices",
          ","], "--devices needs at least one device name"),
    ):
        code, _, err = cli("report", *args)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_search_writes_the_page_and_devices_are_compared(cli: Cli, study: tuple[str, str, Any],
                                                         tmp_path: Path) -> None:
    name, url, _ = study
    out = tmp_path / "d.html"
    code, _, err = cli("report", "--study", name, "--storage", url, "--out", str(out),
                       "--devices", "host,rpi4")
    assert code == 0, err
    data = json.loads(re.search(r'id="data">(.*?)</script>', out.read_text(),
                                re.S).group(1))  # type: ignore[union-attr]
    assert [r["device"] for r in data["compare"]["rows"]] == ["host", "rpi4"]
    if CHROMIUM is not None:  # each device's front drawn as its own staircase
        text = dom(out)
        assert body(text).get("data-ok") == "1" and text.count('class="devplot"') == 2
    page = tmp_path / "s.html"
    code, text, err = cli("search", "--device", "host", "--space", "tiny", "--input-size", "32",
                          "--max-mb", "0.2", "--trials", "3", "--storage",
                          f"sqlite:///{tmp_path / 's.db'}", "--report", str(page))
    assert code == 0, err
    assert page.is_file() and f"page written to {page}" in text


def test_what_is_shown_first_is_the_accuracy_latency_front(cli: Cli,
                                                           study: tuple[str, str, Any]) -> None:
    from autosq.searching.pareto import pareto_front

    name, url, result = study
    members = result.members
    on_2d = set(pareto_front([(m.accuracy, m.latency_ms, 0.0) for m in members]))
    assert [m.primary for m in members] == [i in on_2d for i in range(len(members))]
    code, shown, _ = cli("front", "--study", name, "--storage", url)
    code_all, everything, _ = cli("front", "--study", name, "--storage", url, "--all")
    assert code == code_all == 0
    hidden = sum(not m.primary and not m.recommended for m in members)
    if hidden:
        assert f"The other {hidden} are smaller" in shown and "--all lists" in shown
        assert "The other" not in everything


HOSTILE = ("</script><script>document.body.dataset.pwned='1'</script><!--<script>"
           "<img src=x onerror=\"document.body.dataset.pwned='2'\">")


@needs_browser
@pytest.mark.parametrize("name", ["<!--<script>", "x__DATA__y"])
def test_hostile_text_neither_blanks_the_page_nor_reaches_the_title(name: str,
                                                                   tmp_path: Path) -> None:
    """Issue 29: a study name or a fail reason that would end the data's script element or
    slip a placeholder into the title; and the thinned front with its one-click rest."""
    import html

    from util import synthetic_study

    from autosq.outputs.page import write_report

    url = f"sqlite:///{tmp_path / 's.db'}"
    synthetic_study(url, name, 30, fail_reason=HOSTILE)
    out = tmp_path / "r.html"
    write_report(study=name, out=out, storage=url)
    page = out.read_text()
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title is not None and title.group(1) == html.escape(f"autosq: {name}")
    data = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    assert data is not None and "<" not in data.group(1) and ">" not in data.group(1)
    assert json.loads(data.group(1))["study"] == name
    text = dom(out)
    attrs = body(text)
    assert attrs.get("data-ok") == "1" and "data-error" not in attrs, attrs
    assert "data-pwned" not in attrs and "data-violations" not in attrs, attrs
    assert html.escape(f"Study {name} on host") in text
    drawn = re.findall(r'<circle class="member[^"]*"', text)
    assert len(drawn) == 30 and sum("extra" in c for c in drawn) == 30 - 15
