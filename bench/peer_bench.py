"""autosq against Archai 1.0 at equal wall time, on one common clock (issue 18, item 4).

Both tools search the SqueezeNet v1.1 space of the peer harness (``../shared/peer``:
``v11_space.toml``, ``peer_archai.py``) under 5 MiB, maximising the parameter count (autosq
``--proxy params``) against latency, each for ``--seconds`` (60) from its launch. Then every
feasible candidate each of them evaluated by then is timed again on one common clock, and the
bench prints, per tool:

- candidates: feasible candidates whose evaluation ended within the window (distinct
  architectures), and for autosq how many of them it timed and how many it only predicted;
- hypervolume on the common clock (latency down, parameters up): the area dominated by the
  tool's timed candidates in the box [0, L] x [0, P], divided by L x P, where P is the
  parameter budget (5 MiB of float32) and L the slowest feasible candidate of either tool on
  the common clock (one reference for both, per round);
- latency truth: Spearman of the tool's own latencies against the common clock (autosq: the
  brief screen timings it made during the search; its predictions are shown apart);
- overhead per candidate: (window - time in inference runs) / candidates. Inference runs are
  the timed runs each tool records (Archai: its one cold run; autosq: its timed blocks; autosq's
  warm-up runs count as overhead, which is the strict reading).

The common clock: a plain ONNX Runtime loop, 1 intra-op thread, sequential, all graph
optimisations; ``--passes`` (6) passes over all models in a shuffled order (seeded), each pass
a fresh session, 3 warm-up runs and ``--runs`` (10) timed runs; a model's latency is the median
of its pass medians. Passes spread slow spells of the machine over all models alike.

autosq runs as a user runs it: ``autosq search ... --timeout 60 --json``, its default
confirmation of the front inside the 60 s (``--timeout`` bounds the whole run, from launch to
the printed front); a second row, ``autosq --no-retime``, is the same search without the
confirmation. For autosq the bench also prints the printed front's hypervolume on the common
clock (every member, ``--all``, and the members ``--json`` printed), the Spearman of the
front's own (confirmed) latencies against the clock, and the process's wall time (the window
includes everything: it must be at most the 60 s); for Archai, the hypervolume of the front it
hands its user (``pareto_front.json``, its members evaluated within the window), so that the
fronts each tool prints are compared too.

Round r seeds every tool with ``--seed`` + r. Archai runs in a virtual environment of its own
(``--archai-python``; by default ``bench/.archai/venv``, created with the peer harness's recipe
when missing: torch 2.13.0 from the CPU wheel first, then ``archai==1.0.0 onnx onnxruntime
pandas``). Its candidates are exported to ONNX by its own model code (bench/peer_export.py) in
that environment; autosq's by its plan graph. Rounds rotate which tool runs first. Left out of
Archai's window: its post-search spread test.

Usage: .venv/bin/python bench/peer_bench.py [--seconds 60] [--rounds 3] [--seed 0]
           [--objectives accuracy,latency] [--sampler tpe] [--out DIR] [--peer-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT.parent / "shared" / "peer"
VENV = ROOT / "bench" / ".archai" / "venv"
MAX_MB = 5.0
MAX_PARAMS = math.floor(MAX_MB * 2**20 / 4)
WHEELS = Path("/opt/wheels")


@dataclass
class Candidate:
    """One feasible candidate a tool evaluated within its window."""

    tool: str
    key: str
    params: int
    own_ms: float | None  # the tool's own latency (None: not timed by it)
    predicted_ms: float | None
    done_s: float  # seconds from the tool's launch to the end of its evaluation
    onnx: Path | None = None
    clock_ms: float = math.nan
    clock_passes: list[float] | None = None  # each pass's median, for the clock's own repeat
    final_ms: float | None = None  # the latency the tool ends with (autosq: confirmed ones)


@dataclass
class Run:
    """One tool's run: its candidates in the window and what it spent on inference."""

    tool: str
    wall_s: float
    candidates: list[Candidate]
    inference_s: float
    extra: dict[str, Any]


# -- the Archai side ----------------------------------------------------------------------------
def ensure_archai(python: Path | None) -> Path:
    """The Archai venv's python, created from the peer harness's recipe when missing."""
    if python is not None:
        return python
    exe = VENV / "bin" / "python"
    if exe.exists():
        return exe
    print(f"creating the Archai venv in {VENV} (once; ~80 packages)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    links = ["--find-links", str(WHEELS)] if WHEELS.is_dir() else []
    pip = [str(exe), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *links]
    subprocess.run([*pip, "torch==2.13.0"], check=True)  # the CPU wheel first
    subprocess.run([*pip, "archai==1.0.0", "onnx", "onnxruntime", "pandas"], check=True)
    return exe


def run_archai(python: Path, peer: Path, seconds: float, seed: int, folder: Path) -> Run:
    out = folder / "archai"
    launch = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(python), str(peer / "peer_archai.py"), "--max-mb", str(MAX_MB),
         "--params-direction", "max", "--deadline-s", str(seconds), "--iterations", "1000",
         "--seed", str(seed), "--out-dir", str(out), "--spread-trials", ""],
        capture_output=True, text=True, check=True, cwd=folder)
    wall = time.perf_counter() - t0
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    evals = json.loads((out / "evals.json").read_text())
    seen: dict[str, Candidate] = {}
    inference = 0.0
    for e in evals:
        done = e["t_done_epoch"] - launch
        if done > seconds or e["archid"] in seen:
            continue
        inference += e["latency_s"] * report["args"]["onnx_trials"]
        seen[e["archid"]] = Candidate("archai", e["archid"], int(e["params"]),
                                      e["latency_s"] * 1e3, None, done)
    configs = [[e["archid"], e["config"]] for e in evals if e["archid"] in seen]
    uniq = list({a: [a, c] for a, c in configs}.values())
    (folder / "archai_configs.json").write_text(json.dumps(uniq))
    export = subprocess.run([str(python), str(ROOT / "bench" / "peer_export.py"), str(peer),
                             str(folder / "archai_configs.json"), str(folder / "archai_onnx")],
                            capture_output=True, text=True)
    if export.returncode != 0:  # say why (a full disk, once), not just that it failed
        raise SystemExit(f"peer_bench: exporting Archai's candidates failed:\n"
                         f"{export.stderr[-2000:]}")
    for c in seen.values():
        c.onnx = folder / "archai_onnx" / f"{c.key}.onnx"
    # The front Archai hands its user (its own latencies), for printed against printed
    printed = {m["archid"]: float(m["latency_ms"])
               for m in json.loads((out / "pareto_front.json").read_text())
               if m["archid"] in seen}
    return Run("archai", wall, list(seen.values()), inference,
               {"evaluated_all": report["candidates_evaluated"],
                "iterations": report["iterations_run"], "import_s": report["import_s"],
                "front": printed, "printed_keys": set(printed)})


# -- the autosq side ----------------------------------------------------------------------------
def run_autosq(peer: Path, seconds: float, seed: int, folder: Path, objectives: str,
               sampler: str, retime: bool = True) -> Run:
    import optuna

    from autosq.searching.evaluate import export_model
    from autosq.searching.records import load_records
    from autosq.searching.result import load_result
    from autosq.searching.storage import storage_for

    tool = "autosq" if retime else "autosq --no-retime"
    db = folder / f"{'autosq' if retime else 'autosq_no_retime'}.db"
    storage = f"sqlite:///{db}"
    exe = Path(sys.executable).parent / "autosq"
    launch = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(exe), "search", "--device", "host", "--space", str(peer / "v11_space.toml"),
         "--proxy", "params", "--max-mb", str(MAX_MB), "--max-ms", "0", "--max-ram-mb", "0",
         "--objectives", objectives, "--sampler", sampler, "--seed", str(seed),
         "--timeout", str(seconds), "--json",  # no --trials: the time alone decides
         *([] if retime else ["--no-retime"]), "--storage", storage, "--study", "peer"],
        capture_output=True, text=True, check=True, cwd=folder)
    wall = time.perf_counter() - t0
    printed = json.loads(proc.stdout)
    result = load_result(study="peer", storage=storage)
    study = optuna.load_study(study_name="peer", storage=storage_for(storage, create=False))
    ended = {t.number: t.datetime_complete.timestamp() - launch
             for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None}
    records = load_records(study)
    seen: dict[str, Candidate] = {}
    inference, warmup_and_session, skipped, second_looks, contended = 0.0, 0.0, 0, 0, 0
    onnx_dir = folder / f"{db.stem}_onnx"
    onnx_dir.mkdir()
    for r in records:
        done = ended[r.trial or 0]
        if done > seconds or r.duplicate:
            continue
        if r.latency is not None and r.latency.latency_kind != "predicted":
            inference += r.latency.run_seconds
            warmup_and_session += r.latency.seconds - r.latency.run_seconds
        second_looks += r.first_look_ms is not None
        contended += r.latency is not None and r.latency.contended
        if not r.feasible:
            skipped += not r.measured
            continue
        timed = r.timing != "predicted"
        c = Candidate(tool, r.key, r.params, r.latency_ms if timed else None,
                      None if timed else r.latency_ms, done)
        c.onnx = onnx_dir / f"{r.trial}.onnx"
        c.onnx.write_bytes(export_model(r.config, r.precision, seed=r.trial or 0))
        seen[r.key] = c
    front = {m.record.key: m.latency_ms for m in result.members}
    conf = result.confirmation
    confirmed = {} if conf is None else conf.trials
    by_trial = {r.trial: r.key for r in records}
    for number, latency in confirmed.items():
        c = seen.get(by_trial.get(number, ""))
        if c is not None:
            c.final_ms = latency.latency_ms
    return Run(tool, wall, list(seen.values()), inference,
               {"trials_in_window": sum(d <= seconds for d in ended.values()),
                "warmup_and_session_s": warmup_and_session,
                "over_size_budget": skipped, "second_looks": second_looks,
                "contended": contended, "front": front,
                "printed": [f"{json.dumps(m['config'], sort_keys=True)}" for m in printed],
                "printed_keys": {m.record.key for m in result.members
                                 if m.trial in {p["trial"] for p in printed}},
                "confirm_s": 0.0 if conf is None else conf.seconds,
                "confirm_models": 0 if conf is None or not conf.rounds else sum(conf.rounds),
                "confirm_left": 0 if conf is None else conf.left,
                "screen_error": None if result.screen_error is None
                else result.screen_error.describe()})


# -- the common clock -----------------------------------------------------------------------------
def common_clock(models: list[Path], passes: int, runs: int,
                 seed: int) -> list[list[float]]:
    """Each model's median of ``runs`` timed runs (ms), one per pass."""
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    feed = {"": np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)}
    medians: list[list[float]] = [[] for _ in models]
    rng = random.Random(seed)
    for _ in range(passes):
        order = list(range(len(models)))
        rng.shuffle(order)
        for i in order:
            sess = ort.InferenceSession(str(models[i]), so, providers=["CPUExecutionProvider"])
            x = {sess.get_inputs()[0].name: feed[""]}
            for _ in range(3):
                sess.run(None, x)
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                sess.run(None, x)
                times.append((time.perf_counter() - t) * 1e3)
            medians[i].append(statistics.median(times))
    return medians


# -- figures ------------------------------------------------------------------------------------
def hypervolume(points: list[tuple[float, int]], lat_ref: float) -> float:
    """Area dominated by (latency, params) points in [0, lat_ref] x [0, MAX_PARAMS], over the
    box's area (latency down, params up)."""
    from autosq.searching.pareto import hypervolume as hv

    pts = [(p / MAX_PARAMS, ms / lat_ref, 0.0) for ms, p in points]
    return hv(pts, (0.0, 1.0, 1.0))


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rho (autosq's own, ties averaged); NaN for fewer than 3 pairs."""
    from autosq.accuracy.correlation import spearman as rho

    return rho(a, b) if len(a) >= 3 else math.nan


def summary(run: Run, seconds: float, lat_ref: float) -> dict[str, Any]:
    timed = [c for c in run.candidates if c.own_ms is not None]
    predicted = [c for c in run.candidates if c.predicted_ms is not None]
    extra = dict(run.extra)
    front = extra.pop("front", None)
    printed_keys = extra.pop("printed_keys", None)
    extra.pop("printed", None)
    if front is not None:
        by_key = {c.key: c for c in run.candidates}
        members = [by_key[k] for k in front if k in by_key]
        extra |= {
            "front_members": len(front),
            "hypervolume_front": hypervolume([(c.clock_ms, c.params) for c in members], lat_ref),
            "hypervolume_printed": hypervolume(
                [(c.clock_ms, c.params) for c in members if c.key in printed_keys], lat_ref),
            "printed_members": len(printed_keys or ()),
            "spearman_front_vs_clock": spearman([front[c.key] for c in members],
                                                [c.clock_ms for c in members]),
        }
    row: dict[str, Any] = {
        "tool": run.tool,
        "wall_s": round(run.wall_s, 1),
        "candidates": len(run.candidates),
        "timed": len(timed),
        "predicted": len(predicted),
        "hypervolume": hypervolume([(c.clock_ms, c.params) for c in timed], lat_ref),
        "hypervolume_incl_predicted": hypervolume(
            [(c.clock_ms, c.params) for c in run.candidates], lat_ref),
        "spearman_own_vs_clock": spearman([c.own_ms or 0.0 for c in timed],
                                          [c.clock_ms for c in timed]),
        # the latency each candidate ends with: autosq's confirmation re-times the candidates
        # near the front; the others keep their screen timing
        "spearman_final_vs_clock": spearman(
            [c.final_ms or c.own_ms or 0.0 for c in timed], [c.clock_ms for c in timed]),
        "confirmed_candidates": sum(c.final_ms is not None for c in timed),
        # the clock against itself (the median of its odd passes against that of its even
        # ones): how far a ranking can agree with a clock of half as many passes
        "clock_repeat_spearman": spearman(
            [statistics.median((c.clock_passes or [math.nan])[0::2]) for c in timed],
            [statistics.median((c.clock_passes or [math.nan, math.nan])[1::2]) for c in timed]),
        "spearman_predicted_vs_clock": spearman([c.predicted_ms or 0.0 for c in predicted],
                                                [c.clock_ms for c in predicted]),
        "own_over_clock_median": statistics.median(
            (c.own_ms or 0.0) / c.clock_ms for c in timed) if timed else math.nan,
        "inference_s": round(run.inference_s, 2),
        "overhead_per_candidate_s": (seconds - run.inference_s) / max(1, len(timed)),
        **extra,
    }
    return row


def one_round(args: argparse.Namespace, archai_python: Path, rnd: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"peer_bench_{rnd}_", dir=args.out))
    tools = ["autosq", "archai", "autosq --no-retime"]
    order = tools[rnd % 3:] + tools[:rnd % 3]
    runs: dict[str, Run] = {}
    for tool in order:
        print(f"round {rnd + 1}: {tool} for {args.seconds:g} s", file=sys.stderr)
        if tool == "archai":
            runs[tool] = run_archai(archai_python, args.peer_dir, args.seconds,
                                    args.seed + rnd, folder)
        else:
            runs[tool] = run_autosq(args.peer_dir, args.seconds, args.seed + rnd, folder,
                                    args.objectives, args.sampler, retime=tool == "autosq")
    every = [c for r in runs.values() for c in r.candidates]
    print(f"round {rnd + 1}: common clock over {len(every)} models", file=sys.stderr)
    t0 = time.perf_counter()
    for c, ms in zip(every, common_clock([c.onnx for c in every if c.onnx], args.passes,
                                         args.runs, args.seed + rnd), strict=True):
        c.clock_ms, c.clock_passes = statistics.median(ms), ms
    clock_s = time.perf_counter() - t0
    # a round's models take 2-3 GB; the databases and the figures stay
    for c in every:
        if c.onnx is not None:
            c.onnx.unlink(missing_ok=True)
    lat_ref = max(c.clock_ms for c in every)
    rows = [summary(runs[t], args.seconds, lat_ref) for t in tools]
    return {"round": rnd + 1, "order": order, "lat_ref_ms": lat_ref, "clock_s": clock_s,
            "rows": rows, "candidates": [vars(c) | {"onnx": None} for c in every]}


def ratio(x: float, y: float) -> str:
    """x / y for the printout ("n/a" when Archai had nothing in the window)."""
    return f"{x / y:.3f}" if y > 0 else "n/a (nothing of Archai's in the window)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--objectives", default="accuracy,latency")
    ap.add_argument("--sampler", default="tpe")
    ap.add_argument("--passes", type=int, default=6)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--archai-python", type=Path, default=None)
    ap.add_argument("--peer-dir", type=Path, default=PEER)
    ap.add_argument("--out", type=Path, default=None, help="folder for the runs' files")
    args = ap.parse_args()
    if not (args.peer_dir / "peer_archai.py").is_file():
        print(f"peer_bench: no peer_archai.py in {args.peer_dir}; give --peer-dir",
              file=sys.stderr)
        return 2
    args.out = args.out or Path(tempfile.mkdtemp(prefix="peer_bench_"))
    args.out.mkdir(parents=True, exist_ok=True)
    python = ensure_archai(args.archai_python)
    load = os.getloadavg()
    rounds: list[dict[str, Any]] = []
    for r in range(args.rounds):  # written after each round: a failed round loses only itself
        rounds.append(one_round(args, python, r))
        (args.out / "peer_bench.json").write_text(json.dumps(rounds, indent=1, default=str))
    cols = ("tool", "candidates", "timed", "predicted", "hypervolume", "spearman_own_vs_clock",
            "own_over_clock_median", "inference_s", "overhead_per_candidate_s", "wall_s")
    print(f"machine: {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M')}; load "
          f"{load[0]:.2f} before, {os.getloadavg()[0]:.2f} after; window {args.seconds:g} s "
          f"from launch; autosq --objectives {args.objectives} --sampler {args.sampler}; "
          f"clock {args.passes} passes x {args.runs} runs, 1 thread")
    for rnd in rounds:
        print(f"\nround {rnd['round']} (first: {rnd['order'][0]}; reference latency "
              f"{rnd['lat_ref_ms']:.1f} ms; clock took {rnd['clock_s']:.0f} s)")
        print("  ".join(f"{c:>12.12}" for c in cols))
        for row in rnd["rows"]:
            print("  ".join(f"{row[c]:>12.4g}" if isinstance(row[c], float) else
                            f"{row[c]!s:>12.12}" for c in cols))
        a, b, c = rnd["rows"]
        print(f"hypervolume autosq/archai {a['hypervolume'] / b['hypervolume']:.3f} "
              f"(--no-retime {c['hypervolume'] / b['hypervolume']:.3f}); autosq with its "
              f"predicted candidates {a['hypervolume_incl_predicted']:.4f}; autosq predictions "
              f"vs clock Spearman {a['spearman_predicted_vs_clock']:.3f}")
        for row in rnd["rows"]:
            print(f"{row['tool']}: own latencies vs clock Spearman "
                  f"{row['spearman_own_vs_clock']:.4f} (screen), "
                  f"{row['spearman_final_vs_clock']:.4f} (final: "
                  f"{row['confirmed_candidates']} of {row['timed']} confirmed"
                  + (f"; {row['second_looks']} second looks" if "second_looks" in row else "")
                  + (f"; {row['contended']} timed while the other CPUs were busy"
                     if "contended" in row else "")
                  + "); the clock "
                  f"against itself (odd passes vs even) {row['clock_repeat_spearman']:.4f}")
        print(f"printed fronts on the clock: autosq's {a['printed_members']} (--json) "
              f"{a['hypervolume_printed']:.4f}, Archai's {b['printed_members']} "
              f"(pareto_front.json, within the window) {b['hypervolume_printed']:.4f}: "
              f"{ratio(a['hypervolume_printed'], b['hypervolume_printed'])}; autosq's "
              f"{a['printed_members']} against all of Archai's candidates "
              f"{ratio(a['hypervolume_printed'], b['hypervolume'])}")
        for row in (a, c):
            print(f"{row['tool']}: wall {row['wall_s']:.1f} s (launch to printed front); "
                  f"front {row['front_members']} members, hypervolume on the clock "
                  f"{row['hypervolume_front']:.4f} (printed {row['printed_members']}: "
                  f"{row['hypervolume_printed']:.4f}); front's own latencies vs clock "
                  f"Spearman {row['spearman_front_vs_clock']:.4f}; confirmation "
                  f"{row['confirm_models']} models in {row['confirm_s']:.1f} s "
                  f"({row['confirm_left']} left); {row['screen_error']}")
    print(f"\nfiles: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
