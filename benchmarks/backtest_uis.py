"""Hold-out backtest of every projection method on real series (issue 17: a projection that is robust first).

For every series with at least --min-points observations, the last --holdout observations are hidden,
the rest is projected with each method, and the hidden values are compared with the projections: mean
absolute error (percentage points), the error relative to carrying the last value forward, how often the
hidden values fall inside the 80% and 95% intervals, and the median width of the 80% interval. The
pipeline's method (auto) is also run through the command of DESIGN §6 (`python -m analysis project`) on
the same training file (same numbers). Then coverage and MAE / last value by horizon: years from the
last training observation to the hidden one (gaps count).

    python benchmarks/backtest_uis.py                  # both files in benchmarks/data/
    python benchmarks/backtest_uis.py --development    # the development protocol (see below)
    python benchmarks/backtest_uis.py --data FILE.csv [--min-points 6] [--holdout 3]

Default files: benchmarks/data/uis_sdg4_series.csv (seven countries, series with >= 6 observations) and
benchmarks/data/uis_sdg4_world.csv (every other country, series with >= 8). FILE.csv is any file in the
DESIGN §6 input format (series_id, year, value[, lower, upper]).

--development: the last --holdout observations of every series are removed first and never read; the
protocol then runs on what is left (its own last --holdout observations hidden). The engine's choices were
made on this split of the world file and on the seven-country file; the world file's real hold-out (the
default run) is only looked at to report.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from analysis import projection  # noqa: E402

DATA = ROOT / "benchmarks" / "data"
DEFAULT_RUNS = [(DATA / "uis_sdg4_series.csv", 6), (DATA / "uis_sdg4_world.csv", 8)]
METHODS = ["last_value", "linear", "logit_linear", "damped", "cagr", "auto"]
HORIZONS = [(1, 1, "1"), (2, 2, "2"), (3, 3, "3"), (4, 5, "4-5"), (6, 999, "6+")]


def drop_last(data: pd.DataFrame, holdout: int) -> pd.DataFrame:
    """Every series without its last `holdout` observations (the development split)."""
    data = data[data["value"].notna()].sort_values(["series_id", "year"])
    return data[data.groupby("series_id").cumcount(ascending=False) >= holdout]


def split(data: pd.DataFrame, holdout: int, min_points: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows and hidden rows: the last `holdout` observations of each long-enough series."""
    data = data[data["value"].notna()].sort_values(["series_id", "year"])
    size = data.groupby("series_id")["year"].transform("size")
    data = data[size >= min_points]
    rank_from_end = data.groupby("series_id").cumcount(ascending=False)
    return data[rank_from_end >= holdout], data[rank_from_end < holdout]


def matched(proj: pd.DataFrame, hidden: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    """Hidden values beside their projection, with the horizon in years from the last training year."""
    both = hidden[["series_id", "year", "value"]].merge(
        proj[["series_id", "year", "value", "lo80", "hi80", "lo95", "hi95"]].dropna(subset=["year"])
        .astype({"year": "int64"}), on=["series_id", "year"], suffixes=("_true", ""), how="left")
    both["h"] = both["year"] - both["series_id"].map(train.groupby("series_id")["year"].max())
    truth, tol = both["value_true"], 1e-9
    both["err"] = (both["value"] - truth).abs()
    both["in80"] = (truth >= both["lo80"] - tol) & (truth <= both["hi80"] + tol)
    both["in95"] = (truth >= both["lo95"] - tol) & (truth <= both["hi95"] + tol)
    return both


def score(both: pd.DataFrame) -> dict:
    ok = both["value"].notna()
    b = both[ok]
    return {"n": int(ok.sum()), "missing": int((~ok).sum()), "mae": float(b["err"].mean()),
            "cov80": float(b["in80"].mean()), "cov95": float(b["in95"].mean()),
            "width80": float((b["hi80"] - b["lo80"]).median())}


def run_cli(train: pd.DataFrame, until: int) -> pd.DataFrame:
    """The DESIGN §6 command on the training rows, as a separate process."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "train.csv", Path(tmp) / "projection.csv"
        train[["series_id", "year", "value", "lower", "upper"]].to_csv(src, index=False)
        done = subprocess.run([sys.executable, "-m", "analysis", "project", str(src), "-o", str(dst),
                               "--until", str(until)], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        if done.returncode != 0:
            raise SystemExit(f"the command failed ({done.returncode}):\n{done.stderr}")
        return pd.read_csv(dst)


def print_calibration(table: pd.DataFrame) -> None:
    """The measured map as the YAML block `calibration: prior:` of projection.yaml."""
    print(f"# PIT calibration on {table['series'].max()} series (nominal lower level: calibrated level)")
    for method, rows in table.groupby("method", sort=False):
        pairs = ", ".join(f"{k:g}: {v:.4f}" for k, v in zip(rows["nominal"], rows["calibrated"]))
        print(f"    {method + ':':<13} {{{pairs}}}")


def by_horizon(matches: dict[str, pd.DataFrame], shown: list[str]) -> None:
    """Coverage and MAE / last value per horizon bucket (years ahead of the last training observation)."""
    last = matches["last_value"]
    print("\nby horizon (years from the last training observation; MAE / last value's, cover80, cover95):")
    print((f"{'horizon':<8}{'n':>6}" + "".join(f"   {m:<20}" for m in shown)).rstrip())
    for lo, hi, label in HORIZONS:
        sel = last["h"].between(lo, hi) & last["value"].notna()
        if not sel.any():
            continue
        cells = []
        for m in shown:
            b = matches[m][sel]
            cells.append(f"{b['err'].mean() / last.loc[sel, 'err'].mean():>6.3f} {b['in80'].mean():>5.1%} "
                         f"{b['in95'].mean():>5.1%}")
        print((f"{label:<8}{int(sel.sum()):>6}" + "".join(f"   {c:<20}" for c in cells)).rstrip())


def backtest(data: pd.DataFrame, name: str, holdout: int, min_points: int, by_indicator: bool) -> pd.DataFrame:
    train, hidden = split(data, holdout, min_points)
    until = int(hidden["year"].max())
    print(f"{name}: {train['series_id'].nunique()} series with >= {min_points} points, last {holdout} of each "
          f"hidden ({len(hidden)} values, up to {until})\n")
    rows, matches = [], {}
    for method in METHODS:
        start = time.perf_counter()
        matches[method] = matched(projection.project(train, until=until, method=method), hidden, train)
        rows.append({"method": method, **score(matches[method]), "seconds": time.perf_counter() - start})
    matches["auto (CLI)"] = matched(run_cli(train, until), hidden, train)
    rows.append({"method": "auto (CLI)", **score(matches["auto (CLI)"])})
    table = pd.DataFrame(rows).set_index("method")
    table.insert(2, "mae_vs_last", table["mae"] / table.loc["last_value", "mae"])
    diff = float(np.nanmax(np.abs(matches["auto"][["value", "lo80", "hi80", "lo95", "hi95"]].to_numpy()
                                  - matches["auto (CLI)"][["value", "lo80", "hi80", "lo95", "hi95"]].to_numpy())))

    print("method          n     MAE  MAE/last  cover80  cover95  median width80")
    for m, r in table.iterrows():
        print(f"{m:<12} {int(r.n):>4} {r.mae:>7.3f} {r.mae_vs_last:>9.3f} {r.cov80:>8.1%} {r.cov95:>8.1%} "
              f"{r.width80:>10.2f}")
    print(f"\npipeline method: auto, also through `python -m analysis project` (max |difference| {diff:.1e})")
    by_horizon(matches, ["last_value", "damped", "auto"])
    if by_indicator:
        print("\nper indicator (auto vs last_value):")
        for ind, h in hidden.groupby(hidden["series_id"].str.split(":").str[0]):
            a = score(matches["auto"][matches["auto"]["series_id"].isin(h["series_id"])])
            b = score(matches["last_value"][matches["last_value"]["series_id"].isin(h["series_id"])])
            print(f"  {ind:<28} n={a['n']:>4}  MAE/last {a['mae'] / b['mae']:.3f}  "
                  f"cover80 {a['cov80']:.0%}  cover95 {a['cov95']:.0%}")
    print()
    return table


def _recent_drift(points: int):
    """A rejected lever, for --levers: the damped trend's average change over the last `points` points only."""
    walk = projection._walk

    def recent(z, t, n):
        out, i, j = walk(z, t, n), np.arange(len(n)), np.maximum(n - points, 0)
        with np.errstate(all="ignore"):
            out["drift"] = (z[i, np.maximum(n - 1, 0)] - z[i, j]) / (t[i, np.maximum(n - 1, 0)] - t[i, j])
        return out
    return recent


# (label, changes to projection.yaml, method, replacement of projection._walk): one lever changed at a time
LEVERS = [
    ("auto as shipped", {}, "auto", None),
    ("  run default fixed at 0.5", {("selection", "trend_weights"): [0.5]}, "auto", None),
    ("  no per-series weights (run default only)", {("selection", "shrinkage_errors"): 1e12}, "auto", None),
    ("  no damping (phi 0.999)", {("methods", "damped", "phi"): 0.999}, "auto", None),
    ("  phi 0.9", {("methods", "damped", "phi"): 0.9}, "auto", None),
    ("  phi 0.7", {("methods", "damped", "phi"): 0.7}, "auto", None),
    ("  no turn rule", {("methods", "damped", "turn_changes"): 99}, "auto", None),
    ("  turn = the last change alone", {("methods", "damped", "turn_changes"): 1}, "auto", None),
    ("  recent years: trend of the last 4 points", {}, "auto", _recent_drift(4)),
    ("  recent years: trend of the last 6 points", {}, "auto", _recent_drift(6)),
    ("damped trend alone", {}, "damped", None),
]


def levers(runs: list[tuple[str, pd.DataFrame, int]], holdout: int) -> None:
    """Each lever's effect: auto with one choice changed at a time, on the development data only."""
    meta, walk = projection.metadata(), projection._walk
    splits = [(name, *split(data, holdout, min_points)) for name, data, min_points in runs]
    print("MAE / last value's, cover80, cover95 on: " + "; ".join(n for n, *_ in splits) + "\n")
    base = {name: score(matched(projection.project(tr, until=int(hd["year"].max()), method="last_value"), hd, tr))
            for name, tr, hd in splits}
    for label, changes, method, replacement in LEVERS:
        saved = {key: _swap(meta, key, value) for key, value in changes.items()}
        projection._walk = replacement or walk
        try:
            cells = []
            for name, tr, hd in splits:
                r = score(matched(projection.project(tr, until=int(hd["year"].max()), method=method), hd, tr))
                cells.append(f"{r['mae'] / base[name]['mae']:.3f} {r['cov80']:5.1%} {r['cov95']:5.1%}")
        finally:
            projection._walk = walk
            for key, value in saved.items():
                _swap(meta, key, value)
        print(f"{label:<46}" + "   ".join(cells))


def _swap(meta: dict, key: tuple, value):
    """Set meta[key...] = value; return the value it replaces."""
    *path, last = key
    for k in path:
        meta = meta[k]
    meta[last], old = value, meta[last]
    return old


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="CSV in the DESIGN §6 input format (default: both files "
                        "in benchmarks/data/)")
    parser.add_argument("--holdout", type=int, default=3, help="observations hidden at the end of each series")
    parser.add_argument("--min-points", type=int, help="series shorter than this are skipped "
                        "(default 6 for the seven-country file and --data, 8 for the world file)")
    parser.add_argument("--development", action="store_true",
                        help="remove the last --holdout observations of every series first (never read), "
                             "then run the same protocol on the rest")
    parser.add_argument("--only", metavar="REGEX", help="keep only the series whose id matches (a separate run, "
                        "with its own calibration: a check that the choices generalise)")
    parser.add_argument("--by-indicator", action="store_true",
                        help="also print auto vs last_value per indicator (series_id before ':')")
    parser.add_argument("--levers", action="store_true",
                        help="each lever of auto changed one at a time, on the development data only: the "
                             "seven-country file as usual, the world file's development split and that split "
                             "moved back 3 more observations")
    parser.add_argument("--calibration", action="store_true",
                        help="print the PIT calibration measured on the training part (without --data: of "
                             "both files pooled; with --development, of the development split: the YAML prior)")
    args = parser.parse_args(argv)
    runs = [(args.data, args.min_points or 6)] if args.data else \
        [(path, args.min_points or default) for path, default in DEFAULT_RUNS]
    for path, min_points in runs:
        if not path.is_file():
            print(f"Không thấy tệp dữ liệu / data file not found: {path}\n"
                  "Pass --data FILE.csv (columns series_id, year, value[, lower, upper]).", file=sys.stderr)
            return 2
    if args.calibration and not args.data:  # the YAML prior: both files pooled (their series ids differ)
        runs = [(Path("both files"), pd.concat([pd.read_csv(path)[["series_id", "year", "value", "lower", "upper"]]
                                                for path, _ in DEFAULT_RUNS], ignore_index=True))]
    if args.levers:
        small, world = (pd.read_csv(path) for path, _ in DEFAULT_RUNS)
        levers([("seven countries", small, 6), ("world dev", drop_last(world, args.holdout), 8),
                ("world dev, 3 back", drop_last(world, 2 * args.holdout), 8)], args.holdout)
        return 0
    for path, min_points in runs:
        data = min_points if isinstance(min_points, pd.DataFrame) else pd.read_csv(path)
        data = data.assign(**{c: np.nan for c in ("lower", "upper") if c not in data})
        if args.only:
            data = data[data["series_id"].astype(str).str.contains(args.only, regex=True)]
        name = path.name
        if args.development:
            data, name = drop_last(data, args.holdout), f"{path.name} (development: last {args.holdout} removed)"
        if args.calibration:  # measured without the hidden values, so the hold-out stays a fair test
            train, _ = split(data, args.holdout, 1)
            print(name)
            print_calibration(projection.calibration_table(train))
            continue
        backtest(data, name, args.holdout, min_points, args.by_indicator)
    return 0


if __name__ == "__main__":
    sys.exit(main())
