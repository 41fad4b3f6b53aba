"""Speed of the projection engine against the usual per-series statsmodels loop, same results.

The same N synthetic yearly series (8-15 points, gaps, values inside 0-100) are projected to 2030 with
the linear trend and the linear trend on the logit scale, twice: by ``analysis.projection.project``
(vectorised over all series, model intervals: ``calibrate=False``) and by a plain loop that fits and
forecasts one series at a time with statsmodels OLS (``get_prediction(...).summary_frame``), the way
most code does it. The script prints both times, the ratio, and the largest difference between the two
results (medians and 80%/95% bounds), which must stay below 1e-6; it exits 1 if it does not.
The engine's full pipeline method (auto: rolling-origin backtest, weighting, calibration) is timed too.

    python benchmarks/bench_projection.py [--series 5000] [--quick]
    python benchmarks/bench_projection.py --country 300000     # scale of a country-wide run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import statsmodels.api as sm  # noqa: E402
from scipy.special import expit, logit  # noqa: E402

from analysis.projection import project  # noqa: E402

UNTIL = 2030
COLUMNS = ["value", "lo80", "hi80", "lo95", "hi95"]


def make_series(count: int, seed: int = 2021) -> pd.DataFrame:
    """Logistic trends with noise on the logit scale, 8-15 observed years between 2006 and 2025."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        n = rng.integers(8, 16)
        years = np.sort(rng.choice(np.arange(2006, 2026), size=n, replace=False))
        z = rng.normal(0, 1.5) + rng.normal(0.05, 0.1) * (years - 2006) + rng.normal(0, rng.uniform(0.15, 0.4), n)
        rows.append(pd.DataFrame({"series_id": f"s{i:05d}", "year": years, "value": 100 * expit(z)}))
    frame = pd.concat(rows, ignore_index=True)
    return frame.assign(lower=0.0, upper=100.0)


def make_district_series(count: int, seed: int = 2026) -> pd.DataFrame:
    """Series shaped like the pipeline's: 2021-2026, a proportion from counts (50-3,000 a year)."""
    rng = np.random.default_rng(seed)
    years = np.arange(2021, 2027)
    size = rng.integers(50, 3000, count)[:, None].repeat(len(years), 1)
    p = np.clip(rng.uniform(0.85, 0.999, count)[:, None] + rng.normal(0.002, 0.003, count)[:, None]
                * (years - 2021), 0, 1)
    hits = rng.binomial(size, p)
    return pd.DataFrame({"series_id": np.repeat([f"g{i:06d}" for i in range(count)], len(years)),
                         "year": np.tile(years, count), "value": (100 * hits / size).ravel(),
                         "lower": 0.0, "upper": 100.0, "numerator": hits.ravel(), "denominator": size.ravel()})


def statsmodels_loop(frame: pd.DataFrame, method: str) -> pd.DataFrame:
    """One OLS fit and forecast per series: the way it is usually written."""
    out = []
    for sid, s in frame.groupby("series_id", sort=True):
        y = s["value"].to_numpy() / 100
        target = logit(y) if method == "logit_linear" else y * 100
        fit = sm.OLS(target, sm.add_constant(s["year"].to_numpy(float))).fit()
        future = np.arange(s["year"].max() + 1, UNTIL + 1, dtype=float)
        exog = sm.add_constant(future, has_constant="add")
        pred = fit.get_prediction(exog)
        f80, f95 = pred.summary_frame(alpha=0.2), pred.summary_frame(alpha=0.05)
        result = pd.DataFrame({"series_id": sid, "year": future.astype(int), "value": f80["mean"],
                               "lo80": f80["obs_ci_lower"], "hi80": f80["obs_ci_upper"],
                               "lo95": f95["obs_ci_lower"], "hi95": f95["obs_ci_upper"]})
        if method == "logit_linear":
            result[COLUMNS] = 100 * expit(result[COLUMNS])
        else:
            result[COLUMNS] = result[COLUMNS].clip(0, 100)
        out.append(result)
    return pd.concat(out, ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=5000, help="number of series (default 5000)")
    parser.add_argument("--quick", action="store_true", help="smoke run with 200 series")
    parser.add_argument("--country", type=int, metavar="N",
                        help="instead: time auto alone on N district-like series (2021-2026, with counts)")
    args = parser.parse_args(argv)
    if args.country:
        frame = make_district_series(args.country)
        start = time.perf_counter()
        out = project(frame, until=UNTIL)
        print(f"auto on {args.country:,} series x 6 years with counts -> {len(out):,} projected rows: "
              f"{time.perf_counter() - start:.1f} s")
        return 0
    count = 200 if args.quick else args.series
    frame = make_series(count)
    print(f"{count} series, {len(frame)} observations, projected to {UNTIL}\n")

    worst, t_engine, t_loop = 0.0, 0.0, 0.0
    project(frame.head(50), until=UNTIL)  # warm-up (imports, metadata), as the loop's statsmodels is imported
    print(f"{'method':<14}{'engine s':>10}{'statsmodels s':>15}{'ratio':>9}{'max |diff|':>13}")
    for method in ("linear", "logit_linear"):
        e_time = float("inf")
        for _ in range(3):  # best of three: the engine's time is short and timer noise matters
            start = time.perf_counter()
            engine = project(frame, until=UNTIL, method=method, calibrate=False)
            e_time = min(e_time, time.perf_counter() - start)
        start = time.perf_counter()
        loop = statsmodels_loop(frame, method)
        l_time = time.perf_counter() - start
        both = engine.astype({"year": "int64"}).merge(loop, on=["series_id", "year"], suffixes=("", "_sm"))
        if len(both) != len(loop):
            print(f"row mismatch for {method}: engine {len(engine)}, statsmodels {len(loop)}")
            return 1
        diff = max(float((both[c] - both[f"{c}_sm"]).abs().max()) for c in COLUMNS)
        worst, t_engine, t_loop = max(worst, diff), t_engine + e_time, t_loop + l_time
        print(f"{method:<14}{e_time:>10.3f}{l_time:>15.2f}{l_time / e_time:>8.0f}x{diff:>13.1e}")
    print(f"{'both':<14}{t_engine:>10.3f}{t_loop:>15.2f}{t_loop / t_engine:>8.0f}x{worst:>13.1e}")

    start = time.perf_counter()
    project(frame, until=UNTIL)
    t_auto = time.perf_counter() - start
    print(f"\nauto (backtest, weights, calibrated intervals) on the same series: {t_auto:.3f} s "
          f"({t_loop / 2 / t_auto:.0f}x faster than one statsmodels method in a loop)")
    same = worst < 1e-6
    print(f"same results within 1e-6: {'yes' if same else 'NO'}; engine {t_loop / t_engine:.0f}x faster "
          f"(goal: at least 50x)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
