"""The yearly batch against the naive way, rendering the same reports.

Two ways render the same reporting years, in alternating runs (batch, naive, batch, naive, ...), each
into its own temporary folder, timed on the wall clock:

* batch: ``python -m analysis batch --years ... --jobs 2 --reports-dir TMP --no-progress`` (a subprocess);
  it also writes each year's Excel export and ``index.html``, which the naive way does not;
* naive: what an analyst would type, one notebook at a time, sequentially:
  ``papermill notebooks/X.ipynb OUT/<year>/X.ipynb -p year Y`` then
  ``jupyter nbconvert --to html --no-input OUT/<year>/X.ipynb`` (the command-line tools of the project's
  environment, each a subprocess).

The script prints every run and the medians, the ratio, where the time went (time the kernels spent in
notebook cells, read from the executed notebooks, against everything else: process and kernel start-up,
imports, HTML rendering), and checks that both ways produced the same HTML files with the same number of
embedded charts; it exits 1 if they did not or if a run failed.

    python benchmarks/bench_batch.py                      # every reporting year of the data, 2 repeats
    python benchmarks/bench_batch.py --years 2025-2026 --repeats 3
    python benchmarks/bench_batch.py --quick              # smoke run: latest year, notebook 01 only, once
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from analysis import batch, config  # noqa: E402
from analysis.errors import AnalysisError  # noqa: E402

BIN = Path(sys.executable).parent  # the environment's own papermill and jupyter
IMG = re.compile(r"<img[^>]+src=[\"']data:image/png;base64,")

BUDGET = 3.0  # issue 18: the batch at least 3x faster than the papermill + nbconvert loop


@dataclass
class Run:
    way: str
    index: int
    seconds: float
    out: Path
    ok: bool = True
    error: str = ""
    parts: dict[str, float] = field(default_factory=dict)  # naive: seconds in papermill / nbconvert commands


# --- the two ways ----------------------------------------------------------------------------------------------

def batch_command(years: list[int], out: Path, jobs: int, notebooks: tuple[str, ...],
                  processed_dir: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "analysis", "batch", "--years", ",".join(map(str, years)), "--jobs", str(jobs),
           "--reports-dir", str(out), "--no-progress"]
    if tuple(notebooks) != batch.NOTEBOOKS:
        cmd += ["--notebooks", ",".join(notebooks)]
    if processed_dir:
        cmd += ["--processed-dir", str(processed_dir)]
    return cmd


def naive_commands(year: int, notebook: str, out: Path, processed_dir: Path | None = None) -> list[list[str]]:
    """The two commands an analyst types for one notebook of one year (run from the project root)."""
    executed = out / str(year) / f"{notebook}.ipynb"
    papermill = [str(BIN / "papermill"), f"notebooks/{notebook}.ipynb", str(executed), "-p", "year", str(year)]
    if processed_dir:
        papermill += ["-p", "processed_dir", str(processed_dir)]
    nbconvert = [str(BIN / "jupyter"), "nbconvert", "--to", "html", "--no-input", str(executed)]
    return [papermill, nbconvert]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # an analyst's shell: the kernel picks its inline backend itself
    return env


def run_batch(index: int, years: list[int], root: Path, jobs: int, notebooks: tuple[str, ...],
              processed_dir: Path | None) -> Run:
    out = root / f"batch-{index}"
    start = time.perf_counter()
    proc = subprocess.run(batch_command(years, out, jobs, notebooks, processed_dir), cwd=ROOT, env=_environment(),
                          capture_output=True, text=True)
    run = Run("batch", index, time.perf_counter() - start, out)
    if proc.returncode != 0:
        run.ok, run.error = False, (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1]
    return run


def run_naive(index: int, years: list[int], root: Path, notebooks: tuple[str, ...],
              processed_dir: Path | None) -> Run:
    out = root / f"naive-{index}"
    parts = {"papermill": 0.0, "nbconvert": 0.0}
    start = time.perf_counter()
    for year in years:
        (out / str(year)).mkdir(parents=True, exist_ok=True)
        for notebook in notebooks:
            for name, cmd in zip(parts, naive_commands(year, notebook, out, processed_dir)):
                t = time.perf_counter()
                proc = subprocess.run(cmd, cwd=ROOT, env=_environment(), capture_output=True, text=True)
                parts[name] += time.perf_counter() - t
                if proc.returncode != 0:
                    last = (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1]
                    return Run("naive", index, time.perf_counter() - start, out, False,
                               f"{year} {notebook} {name}: {last}", parts)
    return Run("naive", index, time.perf_counter() - start, out, parts=parts)


# --- what came out --------------------------------------------------------------------------------------------

def html_files(out: Path) -> dict[str, int]:
    """'<year>/<notebook>.html' -> number of embedded PNG charts."""
    return {f"{p.parent.name}/{p.name}": len(IMG.findall(p.read_text(encoding="utf-8")))
            for p in sorted(out.glob("*/*.html"))}


def cell_seconds(out: Path) -> float:
    """Time the kernels spent running notebook cells (papermill records each cell's duration)."""
    total = 0.0
    for path in out.glob("*/*.ipynb"):
        nb = json.loads(path.read_text(encoding="utf-8"))
        total += sum(c.get("metadata", {}).get("papermill", {}).get("duration") or 0.0 for c in nb["cells"])
    return total


# --- command line ----------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--years", help="reporting years, e.g. 2016-2026 or 2025,2026 (default: every year of the data)")
    p.add_argument("--notebooks", help="only these notebooks, e.g. 01_clean (default: all four)")
    p.add_argument("--repeats", type=int, help="runs of each way, alternating (default 2; 1 with --quick)")
    p.add_argument("--jobs", type=int, default=2, help="the batch's --jobs (default 2)")
    p.add_argument("--processed-dir", help="processed data for both ways (default data/processed)")
    p.add_argument("--quick", action="store_true", help="smoke run: latest year, notebook 01_clean, one repeat")
    p.add_argument("--keep", action="store_true", help="keep the output folders and print where they are")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    processed = Path(args.processed_dir).resolve() if args.processed_dir else None
    try:
        available = batch.available_years(processed)
    except AnalysisError as err:  # a clean clone: nothing processed yet
        print(f"{err}\nThe benchmark renders reports from processed data: run `make data` first "
              f"(or pass --processed-dir).", file=sys.stderr)
        return 2
    years = batch.parse_years(args.years, available) if args.years else (available[-1:] if args.quick else available)
    notebooks = tuple(args.notebooks.split(",")) if args.notebooks else (("01_clean",) if args.quick
                                                                          else batch.NOTEBOOKS)
    unknown = [n for n in notebooks if n not in batch.NOTEBOOKS]
    if unknown:
        sys.exit(f"unknown notebook(s): {', '.join(unknown)}")
    repeats = args.repeats or (1 if args.quick else 2)
    cores = config.available_cores()
    print(f"{len(years)} year(s) {years[0]}-{years[-1]} x {len(notebooks)} notebook(s) "
          f"({', '.join(notebooks)}), {repeats} run(s) of each way, alternating; "
          f"batch --jobs {args.jobs}; {cores} cores, load average {os.getloadavg()[0]:.2f} at start")

    root = Path(tempfile.mkdtemp(prefix="bench_batch-"))
    runs: list[Run] = []
    try:
        for i in range(1, repeats + 1):
            for way in ("batch", "naive"):
                run = (run_batch(i, years, root, args.jobs, notebooks, processed) if way == "batch"
                       else run_naive(i, years, root, notebooks, processed))
                run.parts["cells"] = cell_seconds(run.out)
                runs.append(run)
                print(f"  run {i} {way:<5} {run.seconds:8.1f} s" + ("" if run.ok else f"  FAILED: {run.error}"),
                      flush=True)
        return report(runs, years, notebooks)
    finally:
        if args.keep:
            print(f"outputs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def report(runs: list[Run], years: list[int], notebooks: tuple[str, ...]) -> int:
    n_nb = len(years) * len(notebooks)
    print()
    print(f"{'way':<6}{'run':>4}{'wall s':>9}{'cells s':>9}{'other s':>9}{'s/notebook':>12}   detail")
    for r in runs:
        cells = r.parts.get("cells", 0.0)
        detail = (f"papermill commands {r.parts['papermill']:.1f} s, nbconvert commands {r.parts['nbconvert']:.1f} s"
                  if r.way == "naive" else "incl. Excel exports and index.html")
        print(f"{r.way:<6}{r.index:>4}{r.seconds:>9.1f}{cells:>9.1f}{r.seconds - cells:>9.1f}"
              f"{r.seconds / n_nb:>12.2f}   {detail}" + ("" if r.ok else "  FAILED"))
    print("(cells: time the kernels spent running notebook cells, summed over notebooks; other: wall minus cells —"
          " start-up of processes and kernels, imports, rendering; negative when the batch runs notebooks in"
          " parallel)")
    failed = [r for r in runs if not r.ok]
    med = {w: statistics.median(r.seconds for r in runs if r.way == w) for w in ("batch", "naive")}
    ratio = med["naive"] / med["batch"]
    print(f"\nmedian: batch {med['batch']:.1f} s, naive {med['naive']:.1f} s -> batch {ratio:.2f}x faster "
          f"(budget: at least {BUDGET:g}x): {'met' if ratio >= BUDGET else 'NOT met'}")

    ok_runs = [r for r in runs if r.ok]
    outputs = {r.way + str(r.index): html_files(r.out) for r in ok_runs}
    reference = next(iter(outputs.values()), {})
    same = bool(outputs) and all(o == reference for o in outputs.values())
    expected = {f"{y}/{nb}.html" for y in years for nb in notebooks}
    print(f"same HTML files from both ways: {'yes' if same and set(reference) == expected else 'NO'} "
          f"({len(reference)} files, {sum(reference.values())} embedded charts in each run)")
    if not same:
        for name, o in outputs.items():
            diff = set(o.items()) ^ set(reference.items())
            if diff:
                print(f"  {name} differs: {sorted(diff)[:6]}")
    return 1 if failed or not same or set(reference) != expected else 0


if __name__ == "__main__":
    sys.exit(main())
