"""The indicators' grouped sums two ways, on the same long frame of units: pandas (one ``groupby`` per
level, what ``analysis.indicators`` does) against DuckDB (one ``GROUP BY GROUPING SETS`` query), to decide
whether DuckDB earns its place as a dependency (issue 18). Both results are compared.

    python benchmarks/bench_groupby.py PROCESSED_DIR RAW_DIR     # e.g. the country data of bench_scale.py

DuckDB is not a dependency of the project: the script says so and times pandas alone when it is missing
(``pip install duckdb`` to compare).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from analysis import clean, indicators  # noqa: E402
from analysis.geography import Crosswalk, data_geography  # noqa: E402

SUMS = ["numerator", "denominator", "present", "valid"]


def long_units(tables, crosswalk) -> tuple[pd.DataFrame, list[str]]:
    """Every ratio and share indicator's units by sex, with one code column per level (as compute builds)."""
    wards = pd.concat([tables[t][["year", "ma_xa_phuong"]] for t in ("truong", "xa_phuong")]).dropna()
    geo = data_geography({int(y): sorted(set(w)) for y, w in wards.groupby("year")["ma_xa_phuong"]}, crosswalk)
    levels = [*geo.levels, "ward", "ward_current", *indicators.INSTITUTION_LEVELS]
    parts = []
    for ind in indicators.registry().values():
        if ind.compute["method"] == "cohort":
            continue
        u = indicators.units(ind, tables)
        for level in levels[:-2]:
            u[level] = geo.codes(level, u["year"], u["ward"])
        sexes = indicators.SEXES if ind.compute["method"] == "ratio" else ("total",)
        parts.append(indicators.by_sex(u, sexes).assign(indicator_id=ind.id))
    frame = pd.concat(parts, ignore_index=True)
    return frame[["indicator_id", "year", "sex", *levels, *SUMS]].astype({"present": int, "valid": int}), levels


def with_pandas(frame: pd.DataFrame, levels: list[str]) -> pd.DataFrame:
    out = []
    for level in levels:
        g = frame.groupby(["indicator_id", level, "year", "sex"])[SUMS].sum().reset_index()
        out.append(g.rename(columns={level: "geo_code"}).assign(geo_level=level))
    return pd.concat(out, ignore_index=True)


def with_duckdb(frame: pd.DataFrame, levels: list[str]) -> pd.DataFrame:
    import duckdb

    sets = ", ".join(f"(indicator_id, year, sex, {lv})" for lv in levels)
    level = "CASE " + " ".join(f"WHEN GROUPING({lv}) = 0 THEN '{lv}'" for lv in levels) + " END"
    code = "COALESCE(" + ", ".join(levels) + ")"
    query = (f"SELECT indicator_id, {code} AS geo_code, year, sex, {', '.join(f'SUM({c}) AS {c}' for c in SUMS)}, "
             f"{level} AS geo_level FROM frame GROUP BY GROUPING SETS ({sets}) HAVING {code} IS NOT NULL")
    return duckdb.sql(query).df()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("processed_dir", type=Path)
    parser.add_argument("raw_dir", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    tables, crosswalk = clean.load_tables(args.processed_dir), Crosswalk.load(args.raw_dir)
    frame, levels = long_units(tables, crosswalk)
    print(f"{len(frame):,} rows of units by sex, {len(levels)} levels")
    ways = {"pandas groupby": with_pandas}
    try:
        import duckdb  # noqa: F401

        ways["duckdb grouping sets"] = with_duckdb
    except ImportError:
        print("duckdb is not installed (not a dependency): pandas only")
    results = {}
    for name, fn in ways.items():
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            results[name] = fn(frame, levels)
            times.append(time.perf_counter() - start)
        print(f"{name:<22} {min(times):6.2f} s (best of {args.repeats}; all: {', '.join(f'{t:.2f}' for t in times)})")
    if len(results) == 2:
        key = ["geo_level", "indicator_id", "geo_code", "year", "sex"]
        a, b = (r.astype({"geo_code": str, "indicator_id": str, "sex": str, "year": int})
                .sort_values(key, ignore_index=True) for r in results.values())
        same = len(a) == len(b) and all((a[c].astype(float) == b[c].astype(float)).all() for c in SUMS)
        print(f"same sums: {'yes' if same else 'NO'} ({len(a):,} groups)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
