"""The killed-worker run of issue 29, timed: ``autosq search --space tiny --no-retime --trials 12
--workers 3 --storage journal:///W/wk.log --study wk``, SIGKILL to worker 1 at 10 s. Prints how
long after the kill the search ended, its exit code, and the study's trials by state (the
killed worker's trial failed as "its worker stopped", exactly --trials complete).

Usage: python bench/killed_worker_bench.py [--trials 12] [--workers 3] [--kill-at 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kill-at", type=float, default=10.0)
    args = parser.parse_args()

    import optuna

    from autosq.searching.storage import storage_for

    print(f"# {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as folder:
        url = f"journal:///{Path(folder) / 'wk.log'}"
        env = {**os.environ, "AUTOSQ_CACHE_DIR": str(Path(folder) / "cache")}
        main_proc = subprocess.Popen(
            [sys.executable, "-m", "autosq", "search", "--space", "tiny", "--no-retime",
             "--trials", str(args.trials), "--workers", str(args.workers), "--storage", url,
             "--study", "wk"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        time.sleep(args.kill_at)
        children = Path(f"/proc/{main_proc.pid}/task/{main_proc.pid}/children").read_text()
        worker = next(c for c in children.split()
                      if b"--worker\x001\x00" in Path(f"/proc/{c}/cmdline").read_bytes())
        os.kill(int(worker), signal.SIGKILL)
        killed = time.perf_counter()
        _, err = main_proc.communicate(timeout=600)
        after = time.perf_counter() - killed
        study = optuna.load_study(study_name="wk", storage=storage_for(url, create=False))
        states = Counter(t.state.name for t in study.trials)
        reasons = [t.user_attrs.get("fail_reason") for t in study.trials
                   if t.state.name == "FAIL"]
        print(f"worker 1 (pid {worker}) killed at {args.kill_at:g} s; the search ended "
              f"{after:.1f} s later with exit code {main_proc.returncode}")
        print(f"trials: {dict(states)}; failed: {reasons}")
        if main_proc.returncode:
            print(err.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
