"""Objectives the user chooses: parsing, what Optuna stores, the front under each set, and a
study that keeps its objectives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from util import FAST

from autosq.errors import StudyError, UsageError
from autosq.searching.objectives import DEFAULT, LEGACY, Objectives
from autosq.searching.pareto import dominates
from autosq.searching.records import STUDY_ATTR, load_records
from autosq.searching.result import load_result
from autosq.searching.run import run_search
from autosq.searching.storage import storage_for

SETS = ["accuracy,latency", "accuracy,latency,size", "accuracy,latency,memory"]


def search(url: str, **kw: Any) -> Any:
    args: dict[str, Any] = {"device": "host", "max_mb": 0.3, "max_ms": 0, "space": "tiny",
                            "trials": 10, "input_size": 32, "num_classes": 10, "storage": url,
                            "protocol": FAST, "seed": 5, "sampler": "random", "retime": False}
    args.update(kw)
    return run_search(**args)


def load(name: str, url: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage_for(url, create=False))


@pytest.mark.parametrize(("text", "names"), [
    ("accuracy,latency", ("accuracy", "latency")),
    (" Latency , accuracy ", ("accuracy", "latency")),
    ("size,accuracy,latency", ("accuracy", "latency", "size")),
    ("accuracy,latency,memory", ("accuracy", "latency", "memory")),
    (["accuracy", "latency", "size"], ("accuracy", "latency", "size")),
])
def test_parse_puts_the_names_in_canonical_order(text: Any, names: tuple[str, ...]) -> None:
    assert Objectives.parse(text).names == names


def test_directions_and_values_follow_the_names() -> None:
    two, size, memory = (Objectives.parse(t) for t in SETS)
    assert two.directions == ["maximize", "minimize"] and two.third is None
    assert size.directions == ["maximize", "minimize", "minimize"]
    assert two.point(0.5, 3.0, 1.0, 2.0) == (0.5, 3.0, 0.0)
    assert size.point(0.5, 3.0, 1.0, 2.0) == (0.5, 3.0, 1.0)
    assert memory.point(0.5, 3.0, 1.0, 2.0) == (0.5, 3.0, 2.0)
    assert two.values((0.5, 3.0, 0.0)) == (0.5, 3.0)
    assert memory.value_names == ["accuracy", "latency_ms", "peak_mem_mb"]
    assert Objectives().names == DEFAULT


@pytest.mark.parametrize("bad", ["", "accuracy", "accuracy,latency,speed", "latency,size",
                                 "accuracy,latency,size,memory", "accuracy,accuracy,latency"])
def test_bad_sets_name_the_parameter(bad: str) -> None:
    with pytest.raises(UsageError, match=r"^objectives: "):
        Objectives.parse(bad)
    with pytest.raises(UsageError, match=r"^--objectives: "):
        Objectives.parse(bad, "--objectives")


@pytest.mark.parametrize("objectives", SETS)
def test_a_study_optimises_the_chosen_objectives(storage: str, objectives: str) -> None:
    chosen = Objectives.parse(objectives)
    result = search(storage, objectives=objectives)
    study = load(result.study_name, storage)
    assert [d.name.lower() for d in study.directions] == chosen.directions
    assert study.user_attrs["objectives"] == chosen.value_names
    assert result.settings.objectives == chosen
    recs = {r.trial: r for r in load_records(study)}
    for t in study.trials:
        if t.state.name == "COMPLETE":
            r = recs[t.number]
            assert tuple(t.values) == chosen.values(r.point(chosen))
    # The front: exactly the feasible candidates no other dominates under these objectives.
    feasible = [r for r in recs.values() if r.feasible]
    points = {r.trial: r.point(chosen) for r in feasible}
    members = {m.trial for m in result.members}
    assert members
    for t, p in points.items():
        beaten = any(dominates(q, p) for u, q in points.items() if u != t)
        assert (t in members) == (not beaten), (t, p)
    if chosen.third is None:
        assert all(m.primary for m in result.members)


def test_resuming_with_other_objectives_is_refused_with_the_difference(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = search(url, trials=3)
    before = len(load(first.study_name, url).trials)
    with pytest.raises(StudyError, match=r"objectives accuracy,latency, asked "
                                         r"accuracy,latency,size"):
        search(url, trials=5, study=first.study_name, objectives="accuracy,latency,size")
    assert len(load(first.study_name, url).trials) == before  # nothing run, nothing changed
    assert search(url, trials=4, study=first.study_name).counts.trials == 4


def test_a_third_objective_gets_its_own_default_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    a = search(url, trials=2)
    b = search(url, trials=2, objectives="accuracy,latency,size")
    assert b.study_name == a.study_name + "-size-objective"


def test_a_study_from_before_the_choice_reads_as_three_objectives(tmp_path: Path) -> None:
    """Studies written before objectives were stored optimised LEGACY: they show their front
    as before, resume with those objectives, and refuse the new default."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    made = search(url, trials=4, objectives="accuracy,latency,size")
    study = load(made.study_name, url)
    old = dict(study.user_attrs[STUDY_ATTR])
    del old["objectives"]
    study.set_user_attr(STUDY_ATTR, old)
    assert load_result(study=made.study_name, storage=url).settings.objectives.names == LEGACY
    with pytest.raises(StudyError, match=r"objectives accuracy,latency,size, asked "
                                         r"accuracy,latency\).*for objectives: objectives "
                                         r"accuracy,latency,size and study"):
        search(url, trials=5, study=made.study_name)
    again = search(url, trials=5, study=made.study_name, objectives="accuracy,latency,size")
    assert again.counts.trials == 5


def test_a_setting_only_the_stored_study_has_is_a_difference(tmp_path: Path) -> None:
    """A study written by a newer autosq (a setting this one does not know) is not resumed
    and silently rewritten."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    made = search(url, trials=2)
    study = load(made.study_name, url)
    study.set_user_attr(STUDY_ATTR, {**study.user_attrs[STUDY_ATTR], "future": 1})
    with pytest.raises(StudyError, match=r"future 1, asked None"):
        search(url, trials=3, study=made.study_name)
    assert load(made.study_name, url).user_attrs[STUDY_ATTR]["future"] == 1


def test_a_search_object_takes_the_study_s_own_objectives(tmp_path: Path) -> None:
    from autosq.searching.run import Search

    url = f"sqlite:///{tmp_path / 's.db'}"
    made = search(url, trials=2, objectives="accuracy,latency,memory")
    from types import SimpleNamespace

    no_screen = SimpleNamespace(screen=None)
    runner = Search(load(made.study_name, url), None, no_screen)  # type: ignore[arg-type]
    assert runner.objectives.names == ("accuracy", "latency", "memory")
