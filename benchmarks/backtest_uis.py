"""Hold-out backtest of every projection method on real series (issue: projection engine, point 5).

For every series with at least --min-points observations, the last --holdout observations are hidden,
the rest is projected with each method, and the hidden values are compared with the projections: mean
absolute error, the error relative to carrying the last value forward, and how often the hidden values
fall inside the 80% and 95% intervals. The pipeline's method (auto) is also run through the command of
DESIGN §6 (`python -m analysis project`) on the same training file, and both paths must agree.

    python benchmarks/backtest_uis.py [--data FILE.csv] [--holdout 3] [--min-points 6]

FILE.csv is any file in the DESIGN §6 input format (series_id, year, value[, lower, upper]); the default
is the UNESCO UIS SDG 4 extract in ../shared/data/.
"""

from __future__ import annotations

import argparse
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

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "uis_sdg4_series.csv"
METHODS = ["last_value", "linear", "logit_linear", "damped", "cagr", "auto"]


def split(data: pd.DataFrame, holdout: int, min_points: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows and hidden rows: the last `holdout` observations of each long-enough series."""
    data = data[data["value"].notna()].sort_values(["series_id", "year"])
    size = data.groupby("series_id")["year"].transform("size")
    data = data[size >= min_points]
    rank_from_end = data.groupby("series_id").cumcount(ascending=False)
    return data[rank_from_end >= holdout], data[rank_from_end < holdout]


def score(proj: pd.DataFrame, hidden: pd.DataFrame) -> dict:
    both = hidden[["series_id", "year", "value"]].merge(
        proj[["series_id", "year", "value", "lo80", "hi80", "lo95", "hi95"]].astype({"year": "int64"}),
        on=["series_id", "year"], suffixes=("_true", ""), how="left")
    truth = both["value_true"]
    ok = both["value"].notna()
    tol = 1e-9
    return {
        "n": int(ok.sum()),
        "missing": int((~ok).sum()),
        "mae": float((both["value"] - truth).abs()[ok].mean()),
        "cov80": float(((truth >= both["lo80"] - tol) & (truth <= both["hi80"] + tol))[ok].mean()),
        "cov95": float(((truth >= both["lo95"] - tol) & (truth <= both["hi95"] + tol))[ok].mean()),
        "width80": float((both["hi80"] - both["lo80"])[ok].median()),
    }


def run_cli(train: pd.DataFrame, until: int) -> tuple[pd.DataFrame, float]:
    """The DESIGN §6 command on the training rows, as a separate process."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "train.csv", Path(tmp) / "projection.csv"
        train.to_csv(src, index=False)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "analysis", "project", str(src), "-o", str(dst),
                               "--until", str(until)], capture_output=True, text=True, cwd=ROOT,
                              env={**__import__("os").environ, "PYTHONPATH": str(ROOT / "src")})
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"the command failed ({done.returncode}):\n{done.stderr}")
        return pd.read_csv(dst), elapsed


def print_calibration(table: pd.DataFrame) -> None:
    """The measured map as the YAML block `calibration: prior:` of projection.yaml."""
    print(f"# PIT calibration on {table['series'].max()} series (nominal lower level: calibrated level)")
    for method, rows in table.groupby("method", sort=False):
        pairs = ", ".join(f"{k:g}: {v:.4f}" for k, v in zip(rows["nominal"], rows["calibrated"]))
        print(f"    {method + ':':<13} {{{pairs}}}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CSV in the DESIGN §6 input format")
    parser.add_argument("--holdout", type=int, default=3, help="observations hidden at the end of each series")
    parser.add_argument("--min-points", type=int, default=6, help="series shorter than this are skipped")
    parser.add_argument("--only", metavar="REGEX", help="keep only the series whose id matches (a separate run, "
                        "with its own calibration: a check that the choices generalise)")
    parser.add_argument("--by-indicator", action="store_true",
                        help="also print auto vs last_value per indicator (series_id before ':')")
    parser.add_argument("--calibration", action="store_true",
                        help="print the PIT calibration measured on the file minus its hidden values "
                             "(the source of the YAML prior)")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"Không thấy tệp dữ liệu / data file not found: {args.data}\n"
              "Pass --data FILE.csv (columns series_id, year, value[, lower, upper]).", file=sys.stderr)
        return 2
    data = pd.read_csv(args.data)
    if args.only:
        data = data[data["series_id"].astype(str).str.contains(args.only, regex=True)]
    train, hidden = split(data, args.holdout, args.min_points)
    if args.calibration:  # measured without the hidden values, so the table below stays a fair test
        seen = data[~data.set_index(["series_id", "year"]).index.isin(hidden.set_index(["series_id", "year"]).index)]
        print_calibration(projection.calibration_table(seen))
        return 0
    until = int(hidden["year"].max())
    print(f"{args.data.name}: {train['series_id'].nunique()} series with >= {args.min_points} points, "
          f"last {args.holdout} of each hidden ({len(hidden)} values, up to {until})\n")

    rows, projections = [], {}
    for method in METHODS:
        start = time.perf_counter()
        proj = projection.project(train, until=until, method=method)
        projections[method] = proj
        rows.append({"method": method, **score(proj, hidden), "seconds": time.perf_counter() - start})
    table = pd.DataFrame(rows).set_index("method")
    table.insert(2, "mae_vs_last", table["mae"] / table.loc["last_value", "mae"])

    cli, cli_seconds = run_cli(train, until)
    mine = projections["auto"].dropna(subset=["year"]).astype({"year": "int64"})
    cli_rows = cli.dropna(subset=["year"]).astype({"year": "int64"})
    both = mine.merge(cli_rows, on=["series_id", "year"], suffixes=("", "_cli"))
    diff = max(float(np.nanmax(np.abs(both[c] - both[f"{c}_cli"]))) for c in ("value", "lo80", "hi80", "lo95", "hi95"))
    table.loc["auto (CLI)"] = {**score(cli, hidden), "seconds": cli_seconds}
    table.loc["auto (CLI)", "mae_vs_last"] = table.loc["auto (CLI)", "mae"] / table.loc["last_value", "mae"]

    shown = table[["n", "mae", "mae_vs_last", "cov80", "cov95", "width80"]].copy()
    print("method          n     MAE  MAE/last  cover80  cover95  median width80")
    for name, r in shown.iterrows():
        print(f"{name:<12} {int(r.n):>4} {r.mae:>7.3f} {r.mae_vs_last:>9.3f} {r.cov80:>8.1%} {r.cov95:>8.1%} "
              f"{r.width80:>10.2f}")
    best = table.loc["auto"]
    beats = best.mae < table.loc["last_value", "mae"] and best.mae < table.loc["cagr", "mae"]
    honest = 0.70 <= best.cov80 <= 0.90 and 0.90 <= best.cov95 <= 0.99
    print(f"\npipeline method: auto (`python -m analysis project`, same numbers as in-process: "
          f"max |difference| {diff:.1e})")
    print(f"auto beats last_value and cagr on MAE: {'yes' if beats else 'NO'}; "
          f"80% interval covers {best.cov80:.1%}, 95% covers {best.cov95:.1%}: "
          f"{'honest' if honest else 'OFF TARGET'}")

    if args.by_indicator:
        print("\nper indicator (auto vs last_value):")
        for name, h in hidden.groupby(hidden["series_id"].str.split(":").str[0]):
            a, b = score(projections["auto"], h), score(projections["last_value"], h)
            print(f"  {name:<28} n={a['n']:>3}  MAE/last {a['mae'] / b['mae']:.3f}  "
                  f"cover80 {a['cov80']:.0%}  cover95 {a['cov95']:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
