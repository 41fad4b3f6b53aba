"""The pipeline's three commands as a user runs them (``python -m analysis clean``, ``indicators``,
``projections``), each in a fresh process, timed with its peak memory, on a dataset of a chosen size; with
``--baseline REF``, the same commands of an earlier commit of this repository in the same run, alternating,
so that both are measured on the same machine at the same time.

Datasets: ``country`` (default; 63 provinces, ~700 districts, ~10,600 wards, ~45,000 institutions, 11 school
years, generated once into ``benchmarks/_data/country`` by ``benchmarks/country_sample.py``, outside git),
``sample`` (the shipped Bến Cát sample in data/raw, what ``make data`` runs) and ``small`` (a tiny country, a
smoke run of seconds). Peak memory is that of the command's process and its workers together (``TreeMemory``).
The budgets of issue 18: the country under 5 minutes and 8 GiB on 2 cores; the sample no slower than 1.5x
the code before the rewrite (``--baseline f26f6a4``).

    python benchmarks/bench_scale.py                                   # the country, this code
    python benchmarks/bench_scale.py --data sample --baseline f26f6a4 --repeats 5
    python benchmarks/bench_scale.py --data small                      # smoke run
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STAGES = ("clean", "indicators", "projections")
BUDGET = {"country": (300, 8.0), "small": (300, 8.0)}  # seconds, GiB
SAMPLE_RATIO = 1.5
SMALL = {"provinces": 3, "districts": 6, "wards": 24, "institutions": 120, "years": 2}


class TreeMemory:
    """Peak resident memory of a process and every process it starts, summed (sampled every 0.1 s from
    /proc; pages a worker shares with its parent count in both, so the sum is an upper bound)."""

    def __init__(self, pid: int, every: float = 0.1):
        self.pid, self.every, self.peak = pid, every, 0
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree(self) -> list[int]:
        todo, seen = [self.pid], []
        while todo:
            p = todo.pop()
            seen.append(p)
            try:
                for task in os.listdir(f"/proc/{p}/task"):
                    with open(f"/proc/{p}/task/{task}/children") as fh:
                        todo += [int(c) for c in fh.read().split()]
            except OSError:
                pass
        return seen

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            total = 0
            for p in self._tree():
                try:
                    with open(f"/proc/{p}/statm") as fh:
                        total += int(fh.read().split()[1]) * self._page
                except OSError:
                    pass
            self.peak = max(self.peak, total)

    def __enter__(self) -> "TreeMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_command(src: Path, stage: str, raw: Path, out: Path, jobs: int) -> tuple[float, float]:
    """One command in a fresh process with the package of ``src``: (seconds, peak GiB)."""
    args = [sys.executable, "-m", "analysis", stage, "--raw-dir", str(raw), "--processed-dir", str(out)]
    if stage == "projections":
        args += ["--jobs", str(jobs)]
    env = {**os.environ, "PYTHONPATH": str(src), "ANALYSIS_PROJECT_ROOT": str(src.parent)}
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=src.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    with TreeMemory(proc.pid) as memory:
        _, err = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{stage} failed with the code of {src}:\n{err[-2000:]}")
    return seconds, memory.peak / 2**30


def code_of(ref: str | None, scratch: Path) -> tuple[str, Path]:
    """(label, src folder): this checkout's, or a commit's extracted with ``git archive`` (its src/ and
    pyproject.toml, which is how the package finds its root)."""
    if ref is None:
        return "this code", ROOT / "src"
    commit = subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    dest = scratch / f"code-{commit}"
    dest.mkdir()
    archive = subprocess.run(["git", "archive", commit, "src", "pyproject.toml"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return f"code of {commit}", dest / "src"


def dataset(kind: str, scratch: Path, regenerate: bool) -> Path:
    """The raw folder to run on (generated once for the country, every time for the small one)."""
    if kind == "sample":
        return ROOT / "data" / "raw"
    import country_sample  # benchmarks/country_sample.py, beside this script

    size = country_sample.CountrySize(**SMALL) if kind == "small" else country_sample.CountrySize()
    raw = scratch / "small" if kind == "small" else HERE / "_data" / "country"
    from analysis.template import workbook_name

    if regenerate or not all((raw / workbook_name(y)).exists() for y in size.year_list):
        print(f"generating the synthetic country into {raw} (once) ...", flush=True)
        country_sample.generate_country(raw, size, seed=226, progress=kind == "country")
    return raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("country", "sample", "small"), default="country")
    parser.add_argument("--baseline", metavar="REF", help="also run the commands of this commit (e.g. f26f6a4)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each code, alternating (medians shown)")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)), help="projections --jobs")
    parser.add_argument("--regenerate", action="store_true", help="generate the country dataset again")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(HERE))
    with tempfile.TemporaryDirectory(prefix="bench_scale.") as tmp:
        scratch = Path(tmp)
        raw = dataset(args.data, scratch, args.regenerate)
        codes = [code_of(None, scratch)] + ([code_of(args.baseline, scratch)] if args.baseline else [])
        runs: dict[str, list[dict]] = {label: [] for label, _ in codes}
        for r in range(args.repeats):
            for label, src in codes if r % 2 == 0 else codes[::-1]:
                out = scratch / f"out-{len(runs[label])}-{label.replace(' ', '_')}"
                figures = {stage: run_command(src, stage, raw, out, args.jobs) for stage in STAGES}
                runs[label].append(figures)
                shutil.rmtree(out, ignore_errors=True)
                print(f"  run {r + 1} ({label}): " + ", ".join(f"{s} {t:.1f} s / {g:.2f} GiB"
                                                             for s, (t, g) in figures.items()), flush=True)
    print(f"\n{args.data} data ({raw.name}), {args.repeats} run(s) of each code, projections --jobs {args.jobs}; "
          "medians (seconds / peak GiB of the command and its workers)")
    print(f"{'stage':<13}" + "".join(f"{label:>28}" for label in runs))
    for found in runs.values():  # the whole pipeline: the three commands' seconds summed, the highest peak
        for f in found:
            f["pipeline"] = (sum(f[s][0] for s in STAGES), max(f[s][1] for s in STAGES))
    totals = {}
    for stage in (*STAGES, "pipeline"):
        cells = []
        for label, found in runs.items():
            seconds, peak = statistics.median(f[stage][0] for f in found), max(f[stage][1] for f in found)
            totals[label] = (seconds, peak)  # the last row, the pipeline's, is what stays
            cells.append(f"{seconds:>9.2f} s / {peak:5.2f} GiB")
        print(f"{stage:<13}" + "".join(f"{c:>28}" for c in cells))
    mine = totals["this code"]
    if args.data in BUDGET:
        seconds, gib = BUDGET[args.data]
        ok = mine[0] < seconds and mine[1] < gib
        print(f"\nbudget (2 cores): pipeline < {seconds} s and < {gib:g} GiB: {mine[0]:.1f} s, {mine[1]:.2f} GiB: "
              f"{'met' if ok else 'NOT MET'}")
    if args.baseline:
        base = next(v for k, v in totals.items() if k != "this code")
        ratio = mine[0] / base[0]
        print(f"this code / baseline: {ratio:.2f}x the time, {mine[1] / base[1]:.2f}x the peak memory"
              + (f" (budget for the sample: <= {SAMPLE_RATIO}x: {'met' if ratio <= SAMPLE_RATIO else 'NOT MET'})"
                 if args.data == "sample" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
