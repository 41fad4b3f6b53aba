"""Every plan indicator, from the cleaned counts, for every year, geography, institution type and sex.

The registry (``indicators.yaml``) says what each indicator is; this module has no per-indicator code.
Values are always sums of numerators over sums of denominators (never means of rates), with a Wilson 95%
interval that behaves at 0%, 100% and for small counts. Geography comes from the crosswalk: the plan's
territory (the lowest unit that contains every ward of the data), any levels between it and the wards,
wards as named each year, and — where whole wards add up exactly — today's wards. A population-based
series whose territory changed is flagged as a break, never silently joined.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import config, parallel
from analysis.allocator import without_huge_pages
from analysis.errors import AnalysisError, DataFileError
from analysis.geography import Crosswalk, positions, short_name
from analysis.io import staged
from analysis.template import FEMALE_SUFFIX, OWNERSHIP_TYPES, SCHOOL_TYPES, SHEETS_BY_NAME, category_label

REGISTRY_FILE = Path(__file__).with_name("indicators.yaml")
METHODS = ("institution_share", "ratio", "cohort")
SEXES = ("total", "female", "male")
Z95 = 1.959963984540054

OUTPUT_COLUMNS = [
    "indicator_id", "year", "geo_level", "geo_code", "geo_name", "sex", "numerator", "denominator", "value",
    "ci_low", "ci_high", "n_units", "n_reporting", "reporting_share", "n_excluded", "flag_zero_denominator",
    "flag_above_100", "flag_excluded_values", "flag_small_denominator", "flags", "series_break", "territory_id",
    "gpi", "cross_check_of", "direction", "population_based",
]
TABLE_SHEET = {"truong": "Truong", "mam_non": "MamNon", "pho_thong": "PhoThong", "xa_phuong": "XaPhuong"}


@dataclass(frozen=True)
class Indicator:
    id: str
    meta: dict

    @property
    def compute(self) -> dict:
        return self.meta["compute"]

    @property
    def direction(self) -> str:
        return self.meta["direction"]

    @property
    def population_based(self) -> bool:
        return bool(self.meta.get("population_based"))

    @property
    def decimals(self) -> int:
        """Decimals to show the value with (dropout rates near 0,1% need two)."""
        return int(self.meta.get("decimals", 1))

    @property
    def cross_check_of(self) -> str | None:
        return self.meta.get("cross_check_of")

    def text(self, field: str, lang: str = "vi") -> str:
        value = self.meta.get(field, "")
        return value.get(lang, value.get("vi", "")) if isinstance(value, dict) else str(value)


@cache
def _registry_file() -> dict:
    return config.read_yaml(REGISTRY_FILE)


def registry(include_cross_checks: bool = True) -> dict[str, Indicator]:
    """Indicator id -> definition, validated against the raw template."""
    raw = _registry_file()
    out = {}
    for iid, meta in raw["indicators"].items():
        _validate_entry(iid, meta, raw)
        if include_cross_checks or not meta.get("cross_check_of"):
            out[iid] = Indicator(iid, meta)
    return out


def main_indicators() -> dict[str, Indicator]:
    return registry(include_cross_checks=False)


def institution_groups() -> dict[str, list[str]]:
    return _registry_file()["institution_groups"]


def ownership_groups() -> dict[str, dict]:
    return _registry_file()["ownership_groups"]


def _validate_entry(iid: str, meta: dict, raw: dict) -> None:
    c = meta.get("compute", {})
    assert c.get("method") in METHODS, f"{iid}: unknown method {c.get('method')}"
    assert meta.get("direction") in ("increase", "decrease"), f"{iid}: direction"
    sheet = SHEETS_BY_NAME[TABLE_SHEET[c["table"]]]
    for key in ("numerator", "denominator", "flag"):
        if key in c:
            assert c[key] in sheet.by_id, f"{iid}: {c[key]} is not a column of {sheet.name}"
    if "institutions" in c:
        assert c["institutions"] in raw["institution_groups"], f"{iid}: institutions group"
    for field in ("name", "short", "definition", "numerator", "denominator", "coverage", "source", "caveats"):
        assert isinstance(meta.get(field), dict) and meta[field].get("vi") and meta[field].get("en"), f"{iid}: {field}"


# --- proportions -------------------------------------------------------------------------------------------

WILSON_CHUNK = 1 << 16  # rows at a time: the temporaries stay in the cache and are not fresh memory each time


def wilson_interval(numerator, denominator, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval in percent; right at 0 and 100% and for small counts (NaN when n = 0, or when
    the ratio is not a proportion, e.g. a cohort proxy above 100%).

    Computed a chunk of rows at a time into the two result arrays: at country scale the table has millions
    of rows, and full-length temporaries were 160 MiB of fresh memory to fault in (each value is computed
    the same way, whatever the chunk)."""
    shape = np.broadcast_shapes(np.shape(numerator), np.shape(denominator))
    # numpy arrays are converted to floats a chunk at a time; anything else (lists, pandas columns with NA) once
    x, n = (np.broadcast_to(v if isinstance(v, np.ndarray) else np.asarray(v, dtype=float), shape).reshape(-1)
            for v in (numerator, denominator))
    low, high = np.empty(x.shape), np.empty(x.shape)
    for start in range(0, len(x), WILSON_CHUNK):
        part = slice(start, start + WILSON_CHUNK)
        _wilson_part(x[part].astype(float), n[part].astype(float), z, low[part], high[part])
    return low.reshape(shape), high.reshape(shape)


def _wilson_part(x: np.ndarray, n: np.ndarray, z: float, low: np.ndarray, high: np.ndarray) -> None:
    ok = (n > 0) & (x <= n)
    z2 = z * z
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.divide(1.0, n, out=np.full(x.shape, np.nan), where=ok)  # 1/n, NaN where not a proportion
        p = x * inv
        denom = z2 * inv
        denom += 1.0
        centre = (z2 / 2) * inv
        centre += p
        centre /= denom
        half = 1.0 - p
        half *= p
        half *= inv
        inv *= inv
        inv *= z2 / 4
        half += inv
        np.sqrt(half, out=half)
        half *= z
        half /= denom
    np.subtract(centre, half, out=low)
    np.add(centre, half, out=high)
    np.clip(low, 0.0, 1.0, out=low)
    np.clip(high, 0.0, 1.0, out=high)
    low[ok & (x == 0)] = 0.0  # exact ends: the interval always contains the estimate
    high[ok & (x == n)] = 1.0
    low *= 100.0
    high *= 100.0


# --- geography of the data --------------------------------------------------------------------------------

@dataclass
class Geography:
    """Where each ward of the data sits, each year, and which units the report covers."""

    crosswalk: Crosswalk
    hierarchy: pd.DataFrame  # year, ward_code, <level>_code for each level above
    territory_level: str
    levels: list[str]  # levels reported between the territory (first) and the ward (excluded)
    current_map: dict[str, str]

    @cached_property
    def territory_unit(self) -> dict[int, str]:
        """year -> the unit (of the territory level) that contains every ward that year."""
        if self.territory_level == "ward":
            return {}
        h = self.hierarchy.drop_duplicates("year")
        return dict(zip(h["year"].astype(int).tolist(), h[self.territory_level].tolist()))

    @cached_property
    def territory_codes(self) -> dict[int, str]:
        """year -> the territory's series code, stable across renames (BEN_CAT_KH continues BEN_CAT)."""
        return {y: self.crosswalk.canonical(c) for y, c in self.territory_unit.items()}

    def series_units(self, level: str) -> dict[str, list[tuple[int, str]]]:
        """series code -> [(year, unit)] by year, for the units of ``level`` the data has: the unit whose
        wards the series covers each year (the territory's unit may be renamed; its series code stays)."""
        if level == self.territory_level:
            pairs = [(year, self.crosswalk.canonical(unit), unit) for year, unit in self.territory_unit.items()]
        else:  # the distinct (year, unit) of the hierarchy, found on integer codes
            units = self.hierarchy[level].to_numpy(dtype=object)
            known = units != None  # noqa: E711 (elementwise on objects)
            codes, distinct = pd.factorize(units[known])
            year = self.hierarchy["year"].to_numpy(np.int64)[known]
            width = max(len(distinct), 1)
            seen = np.unique(year * width + codes)
            pairs = [(year, code, code) for year, code in
                     zip((seen // width).tolist(), np.asarray(distinct, dtype=object)[seen % width].tolist())]
        out: dict[str, list[tuple[int, str]]] = {}
        for year, code, unit in sorted(pairs, key=lambda p: p[0]):
            out.setdefault(code, []).append((year, unit))
        return out


class _Factorized:
    """Each text column's codes (-1: missing) and distinct values (in order of appearance), found once per run
    and shared by the geography and the keys. ``prefetch`` finds some in a thread while the caller goes on:
    Arrow's dictionary encoding runs without the interpreter lock (the geography's crosswalk walks hold it)."""

    def __init__(self, tables: dict[str, pd.DataFrame]):
        self.tables = tables
        self._found: dict[tuple[str, str], tuple[np.ndarray, list]] = {}
        self._pending: dict[tuple[str, str], Any] = {}
        self._pool = None

    def _factorize(self, table: str, column: str) -> tuple[np.ndarray, list]:
        codes, distinct = pd.factorize(self.tables[table][column], use_na_sentinel=True)
        return codes, distinct.tolist()

    def prefetch(self, columns: list[tuple[str, str]]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        wanted = [(t, c) for t, c in dict.fromkeys(columns) if t in self.tables and c in self.tables[t]]
        if wanted:
            self._pool = ThreadPoolExecutor(1)
            self._pending.update({key: self._pool.submit(self._factorize, *key) for key in wanted})

    def get(self, table: str, column: str) -> tuple[np.ndarray, list]:
        key = (table, column)
        if key not in self._found:
            pending = self._pending.pop(key, None)
            self._found[key] = pending.result() if pending is not None else self._factorize(table, column)
        return self._found[key]

    def finish(self) -> None:
        """Every prefetch done and the thread ended (before a fork: a child must not inherit a running thread)."""
        for key in list(self._pending):
            self.get(*key)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _wards_by_year(tables: dict[str, pd.DataFrame], factorized: _Factorized | None = None) -> dict[int, list[str]]:
    """year -> the distinct ward codes of the data that year (Truong and XaPhuong), each year's in the order
    they first appear in the data. Found on the columns' integer codes and a count per (year, code): a
    country's 600,000 rows of text deduplicated as Python strings took a fifth of a second."""
    factorized = factorized or _Factorized(tables)
    names = [n for n in ("truong", "xa_phuong") if n in tables and len(tables[n])]
    words: list = []
    codes, years = [], []
    for name in names:  # one vocabulary for both tables, in order of first appearance
        own, distinct = factorized.get(name, "ma_xa_phuong")
        found = positions(pd.Index(words, dtype=object), distinct) if words else np.full(len(distinct), -1)
        new = np.flatnonzero(found < 0)  # each table's distinct values are distinct: new words in their order
        found[new] = len(words) + np.arange(len(new))
        words += [distinct[k] for k in new.tolist()]
        codes.append(np.append(found, -1)[own])  # code -1 (missing) stays missing
        years.append(tables[name]["year"].to_numpy(np.int64))
    if not codes:
        return {}
    code, year = np.concatenate(codes), np.concatenate(years)
    year, code = year[code >= 0], code[code >= 0]
    if not len(code):
        return {}
    n_words, y0 = len(words), int(year.min())
    seen = np.flatnonzero(np.bincount((year - y0) * n_words + code))  # sorted by year, then code
    found = np.asarray(words, dtype=object)[seen % n_words]
    found_years = seen // n_words + y0
    bounds = np.flatnonzero(np.diff(found_years)) + 1
    return {int(y[0]): w.tolist() for y, w in zip(np.split(found_years, bounds), np.split(found, bounds))}


def _hierarchy(wards: dict[int, list[str]], crosswalk: Crosswalk) -> pd.DataFrame:
    """One row per (year, ward) of the data: ``year, ward_code`` and the code of every unit above the ward
    (text columns as objects, None where a ward has no unit of a level: the table is read back as Python
    strings, not as a pandas text column). Joined as arrays: one frame, not one per year."""
    if not wards:
        return pd.DataFrame({"year": np.zeros(0, np.int64), "ward_code": np.zeros(0, object)})
    found = {year: crosswalk.ancestry(year, codes) for year, codes in wards.items()}
    levels = list(dict.fromkeys(level for above in found.values() for level in above))
    columns = {"year": np.concatenate([np.full(len(codes), year, np.int64) for year, codes in wards.items()]),
               "ward_code": np.concatenate([np.asarray(codes, dtype=object) for codes in wards.values()])}
    for level in levels:
        columns[level] = np.concatenate([found[year].get(level, np.full(len(codes), None, dtype=object))
                                         for year, codes in wards.items()])
    return pd.DataFrame({name: pd.Series(values, dtype=values.dtype, copy=False) for name, values in columns.items()})


def _one_unit_a_year(hierarchy: pd.DataFrame, level: str) -> bool:
    """Is every ward under one and the same unit of ``level`` each year (the territory the data covers)?"""
    units = hierarchy[level].to_numpy(dtype=object)
    if (units == None).any():  # noqa: E711 (elementwise on objects)
        return False
    codes, _ = pd.factorize(units)
    year = hierarchy["year"].to_numpy()
    starts = np.flatnonzero(np.r_[True, year[1:] != year[:-1]])  # rows come year by year
    return bool((np.minimum.reduceat(codes, starts) == np.maximum.reduceat(codes, starts)).all())


def build_geography(tables: dict[str, pd.DataFrame], crosswalk: Crosswalk,
                    factorized: _Factorized | None = None) -> Geography:
    wards = _wards_by_year(tables, factorized)
    hierarchy = _hierarchy(wards, crosswalk)
    levels_above = [lv for lv in ("district", "province", "country") if lv in hierarchy]
    territory = "ward"
    for lv in levels_above:
        if len(hierarchy) and _one_unit_a_year(hierarchy, lv):
            territory = lv
            break
    if territory == "ward":
        levels = []
    else:
        levels = levels_above[: levels_above.index(territory) + 1][::-1]  # territory first, then downwards
    # today's wards only where history changed (a merger, a new code): an unchanged ward's series is its
    # `ward` series already, and repeating it would double the output at country scale
    current = {old: new for old, new in crosswalk.current_ward_map({w for ws in wards.values() for w in ws}).items()
               if crosswalk.has_history(new)}
    return Geography(crosswalk, hierarchy, territory, levels, current)


# --- computation -------------------------------------------------------------------------------------------
# Every key (ward, unit above it, today's ward, institution type, ownership group) is an integer code into a
# sorted vocabulary built once per run (``_Keys``). An indicator's units are numpy arrays (``_Units``); each
# breakdown is one ``np.bincount`` over (year, key); the long table is assembled once, in its final order,
# from integer columns and small dictionaries of strings. A country (10,000 wards x 11 years x 14 indicators
# x 3 sexes, ~5 million rows) is then a few seconds, where per-group pandas took minutes.

EXTRA_LEVELS = ("ward", "ward_current", "school_level", "ownership")
PARALLEL_ROWS = 200_000  # cleaned rows from which two processes pay (a fork and the shared arrays: ~0.1 s)


def _objects(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=object, na_value=None)


def _vocabulary(values) -> pd.Index:
    """Distinct strings, sorted (so code order is string order), as an object Index for lookups."""
    distinct = pd.unique(np.asarray(list(values), dtype=object))  # hashed once, not every value sorted
    return pd.Index(sorted(v for v in distinct.tolist() if isinstance(v, str)), dtype=object)


def _recode(codes: np.ndarray, distinct: list, vocab: pd.Index, mapping: dict | None = None) -> np.ndarray:
    """Codes into ``distinct`` (-1: missing) as codes into ``vocab`` (through ``mapping`` first, if given)."""
    distinct = [mapping.get(u) for u in distinct] if mapping is not None else distinct
    found = np.append(positions(vocab, distinct), -1)
    return found[codes]  # code -1 (missing) takes the appended -1


@dataclass
class _Units:
    """One row per unit (institution, institution-level or ward) and year an indicator covers."""

    year: np.ndarray  # year index (year - first year)
    ward: np.ndarray  # ward code (-1: none)
    school_type: np.ndarray | None  # institution type code (-1: none); None for ward-based data
    ownership: np.ndarray | None
    num: np.ndarray  # counts as floats, NaN where missing or excluded by cleaning
    den: np.ndarray
    num_f: np.ndarray
    den_f: np.ndarray
    present: np.ndarray  # False for an expected institution with no row (did not report)

    def __len__(self) -> int:
        return len(self.year)


def _where_key(where: dict) -> tuple:
    """An indicator's row filter (column -> allowed values) as a key: indicators with the same one share."""
    return tuple((col, tuple(allowed)) for col, allowed in where.items())


class _Keys:
    """Integer codes of the run: years, institutions, and one sorted vocabulary per breakdown level."""

    def __init__(self, tables: dict[str, pd.DataFrame], geo: Geography, factorized: _Factorized | None = None):
        self.tables, self.geo = tables, geo
        self._columns = factorized or _Factorized(tables)
        self._memo: dict[tuple, Any] = {}
        years = np.concatenate([tables[t]["year"].to_numpy(np.int64) for t in TABLE_SHEET if t in tables]
                               + [np.zeros(0, np.int64)])
        self.y0 = int(years.min()) if len(years) else 0
        self.n_years = int(years.max()) - self.y0 + 1 if len(years) else 1
        truong = tables["truong"]
        own = {m: g for g, spec in ownership_groups().items() for m in spec["members"]}
        ward_values = [v for t in ("truong", "xa_phuong") if t in tables for v in self.factorized(t, "ma_xa_phuong")[1]]
        territory = geo.territory_codes
        h = geo.hierarchy
        self.vocab: dict[str, pd.Index] = {
            "ward": _vocabulary(ward_values),
            "ward_current": _vocabulary(geo.current_map.values()),
            "school_level": _vocabulary(self.factorized("truong", "loai_truong")[1]),
            "ownership": _vocabulary([own.get(v) for v in self.factorized("truong", "loai_hinh")[1]]),
        }
        for level in geo.levels:
            self.vocab[level] = _vocabulary(territory.values() if level == geo.territory_level else h[level].tolist())
        # where each ward sits, each year: level -> (year, ward) -> code
        ward_vocab = self.vocab["ward"]
        self.above: dict[str, np.ndarray] = {}
        h_year = h["year"].to_numpy(np.int64) - self.y0 if len(h) else np.zeros(0, np.int64)
        h_ward = positions(ward_vocab, _objects(h["ward_code"])) if len(h) else np.zeros(0, np.int64)
        for level in geo.levels:
            lut = np.full((self.n_years, max(len(ward_vocab), 1)), -1, dtype=np.int64)
            if level == geo.territory_level:
                for year, code in territory.items():
                    lut[year - self.y0, :] = self.vocab[level].get_loc(code)
            else:
                ok = h_ward >= 0
                lut[h_year[ok], h_ward[ok]] = positions(self.vocab[level], _objects(h[level]))[ok]
            self.above[level] = lut
        self.current = np.full(max(len(ward_vocab), 1), -1, dtype=np.int64)
        if geo.current_map:
            old = positions(ward_vocab, list(geo.current_map))
            new = positions(self.vocab["ward_current"], list(geo.current_map.values()))
            self.current[old[old >= 0]] = new[old >= 0]
        # institutions: attributes per Truong row, and (year, institution) keys to find them
        codes, distinct = self.factorized("truong", "ma_truong")  # the institutions, in order
        self.institutions = pd.Index(np.asarray(distinct, dtype=object), dtype=object)
        self.t_year = truong["year"].to_numpy(np.int64) - self.y0
        self.t_key = self._institution_key(self.t_year, codes)
        self.t_ward = self.codes("truong", "ma_xa_phuong", ward_vocab)
        self.t_type = self.codes("truong", "loai_truong", self.vocab["school_level"])
        self.t_own = self.codes("truong", "loai_hinh", self.vocab["ownership"], own)

    def memo(self, token: tuple, build):
        """``build()``, once per run for this token (shared by the indicators that ask the same question; the
        arrays are never changed in place)."""
        if token not in self._memo:
            self._memo[token] = build()
        return self._memo[token]

    def factorized(self, table: str, column: str) -> tuple[np.ndarray, list]:
        """(code per row, -1 missing; the distinct values in order of appearance) of a text column, once per
        run: the vocabularies and the codes of the same column come from one pass over it."""
        return self._columns.get(table, column)

    def codes(self, table: str, column: str, vocab: pd.Index, mapping: dict | None = None) -> np.ndarray:
        """Code of each row's value in ``vocab`` (-1: missing or not in it), through the distinct values."""
        codes, distinct = self.factorized(table, column)
        return _recode(codes, distinct, vocab, mapping)

    def institution_keys(self, table: str) -> np.ndarray:
        """(year, institution) of each row of ``table`` as one integer; -1 for an institution in no year of
        Truong."""
        code = self.codes(table, "ma_truong", self.institutions)
        return self._institution_key(self.tables[table]["year"].to_numpy(np.int64) - self.y0, code)

    def _institution_key(self, year: np.ndarray, code: np.ndarray) -> np.ndarray:
        """(year - y0, institution code) as one integer, -1 where the code is -1: Truong's keys and every table's."""
        return np.where(code >= 0, year * max(len(self.institutions), 1) + code, -1)

    def table_rows(self, table: str, where: dict) -> tuple[np.ndarray, np.ndarray | None]:
        """(Truong row of each row of ``table`` that ``where`` keeps, -1 when its institution is not in Truong
        that year; the kept rows as a mask, None for all). Once per table and filter: the indicators of one
        table share them, and only the columns an indicator reads are then taken, not the whole frame."""
        def build() -> tuple[np.ndarray, np.ndarray | None]:
            data = self.tables[table]
            rows = self.memo(("rows in truong", table), lambda: self.truong_rows(self.institution_keys(table)))
            mask = None
            for col, allowed in where.items():
                keep = data[col].isin(allowed).to_numpy(dtype=bool, na_value=False)
                mask = keep if mask is None else mask & keep
            return (rows if mask is None else rows[mask]), mask

        return self.memo(("table rows", table, _where_key(where)), build)

    def truong_rows(self, keys: np.ndarray) -> np.ndarray:
        """Position in Truong of each (year, institution) key, -1 when absent (a left merge)."""
        return self.memo(("truong index",), lambda: pd.Index(self.t_key)).get_indexer(keys)

    def groupings(self, ind: Indicator, units: _Units) -> list[tuple[str, np.ndarray]]:
        """(geo_level, key code per unit row, -1 = left out) for every breakdown the indicator has."""
        out = self.geo_groupings(units.year, units.ward)
        if ind.compute["table"] != "xa_phuong":
            out.append(("school_level", units.school_type))
            out.append(("ownership", units.ownership))
        return out

    def geo_groupings(self, year: np.ndarray, ward: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """(geo_level, key code per row) for the geographies, from each row's year and ward code."""
        out = []
        has_ward = ward >= 0
        for level in self.geo.levels:
            lut = self.above[level]
            out.append((level, np.where(has_ward, lut[year, np.where(has_ward, ward, 0)], -1)
                        if level != self.geo.territory_level else lut[year, 0]))
        out.append(("ward", ward))
        out.append(("ward_current", np.where(has_ward, self.current[np.where(has_ward, ward, 0)], -1)))
        return out


def _counts(data: pd.DataFrame, name: str) -> np.ndarray:
    if name in data:
        return data[name].to_numpy(dtype="float64", na_value=np.nan)
    return np.full(len(data), np.nan)


def _units(ind: Indicator, keys: _Keys) -> _Units:
    """The indicator's units with their numerator, denominator and girls' counts (NaN where missing). The
    units of a table, filter and group of institutions, and each count column of them, are found once per
    run: indicators on the same units (the primary school's dropout, completion and cohort) share them."""
    c = ind.compute
    table, group = c["table"], c.get("institutions", "all")
    token = (table, _where_key(c.get("where", {})), group)
    rows = keys.memo(("units", *token), lambda: _unit_rows(keys, table, c.get("where", {}), group))
    if table == "truong":  # an institution share: the flag of each expected institution
        values = keys.memo(("flag", *token, c["flag"]), lambda: keys.tables["truong"][c["flag"]].to_numpy(
            dtype="float64", na_value=np.nan)[rows["expected"]])
        nan = np.full(len(values), np.nan)
        return _Units(**rows["units"], num=values, den=np.where(np.isnan(values), np.nan, 1.0), num_f=nan, den_f=nan)

    def counts(name: str) -> np.ndarray:
        def build() -> np.ndarray:
            values = _counts(keys.tables[table], name)
            return np.r_[values if rows["mask"] is None else values[rows["mask"]], np.full(rows["missing"], np.nan)]
        return keys.memo(("counts", *token, name), build)

    return _Units(**rows["units"], num=counts(c["numerator"]), den=counts(c["denominator"]),
                  num_f=counts(c["numerator"] + FEMALE_SUFFIX), den_f=counts(c["denominator"] + FEMALE_SUFFIX))


def _unit_rows(keys: _Keys, table: str, where: dict, group: str) -> dict:
    """The units of a table, filter and group of institutions: their year, ward, type, ownership and presence
    (``units``); for a table of institution rows, the kept rows (``mask``) and the number of expected
    institutions without a row (``missing``: they did not report, and come last)."""
    tables = keys.tables
    if table == "xa_phuong":
        data = tables["xa_phuong"]
        units = dict(year=data["year"].to_numpy(np.int64) - keys.y0,
                     ward=keys.codes("xa_phuong", "ma_xa_phuong", keys.vocab["ward"]), school_type=None,
                     ownership=None, present=np.ones(len(data), bool))
        return {"units": units, "mask": None, "missing": 0}
    members = institution_groups()[group]
    member = np.zeros(len(keys.vocab["school_level"]) + 1, bool)  # by type code; the last entry for code -1
    member[positions(keys.vocab["school_level"], members)] = True
    member[-1] = False  # a member type absent from the data (code -1) marks no institution
    expected = member[keys.t_type]
    if table == "truong":
        units = dict(year=keys.t_year[expected], ward=keys.t_ward[expected], school_type=keys.t_type[expected],
                     ownership=keys.t_own[expected], present=np.ones(int(expected.sum()), bool))
        return {"units": units, "mask": None, "missing": 0, "expected": expected}
    data = tables[table]
    row, mask = keys.table_rows(table, where)  # each row's institution in Truong (-1: none)
    found = row >= 0

    def attr(values: np.ndarray) -> np.ndarray:
        return np.where(found, values[np.where(found, row, 0)], -1) if len(values) else np.full(len(row), -1)

    reported = np.zeros(len(keys.t_key), bool)
    reported[row[found]] = True
    missing = np.flatnonzero(expected & ~reported)  # expected institutions with no row: did not report
    year = data["year"].to_numpy(np.int64) - keys.y0
    units = dict(year=np.r_[year if mask is None else year[mask], keys.t_year[missing]],
                 ward=np.r_[attr(keys.t_ward), keys.t_ward[missing]],
                 school_type=np.r_[attr(keys.t_type), keys.t_type[missing]],
                 ownership=np.r_[attr(keys.t_own), keys.t_own[missing]],
                 present=np.r_[np.ones(len(row), bool), np.zeros(len(missing), bool)])
    return {"units": units, "mask": mask, "missing": len(missing)}


# --- aggregation ---------------------------------------------------------------------------------------------

def _sex_columns(units: _Units, sexes: tuple[str, ...] = SEXES) -> dict[str, np.ndarray]:
    """Per-unit numerator, denominator and validity for each sex (pairwise-complete, nothing imputed); only
    the sexes asked for (an institution share has no girls' columns: a third of the work)."""
    num, den, num_f, den_f, present = units.num, units.den, units.num_f, units.den_f, units.present
    valid = {"total": present & ~np.isnan(num) & ~np.isnan(den)}  # a unit that did not report has no counts
    parts = {"total": (num, den)}
    if "female" in sexes or "male" in sexes:
        valid["female"] = present & ~np.isnan(num_f) & ~np.isnan(den_f)
        valid["male"] = valid["total"] & valid["female"]
        parts.update(female=(num_f, den_f), male=(num - num_f, den - den_f))
    # a unit with valid counts for a sex is present, so each sex's excluded units are the present ones without
    # them: one column of present units summed instead of one excluded column per sex (_excluded)
    cols = {"n_units": np.ones(len(units)), "n_present": present.astype(float)}
    for sex in sexes:
        n_, d_ = parts[sex]
        ok = valid[sex]
        cols[f"numerator|{sex}"] = np.where(ok, n_, 0.0)
        cols[f"denominator|{sex}"] = np.where(ok, d_, 0.0)
        cols[f"n_reporting|{sex}"] = ok.astype(float)
    return cols


def _excluded(sums: dict[str, np.ndarray], sex: str) -> np.ndarray:
    """Units present but without valid counts for that sex (excluded by cleaning), from summed columns."""
    return sums["n_present"] - sums[f"n_reporting|{sex}"]


def _group_sums(year: np.ndarray, n_years: int, key: np.ndarray, n_keys: int,
                columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Sum each column by (year, key) with integer codes (key -1 left out): the groups, sorted by year then
    key, and their sums (rounded to whole counts). One bincount per column, no per-group Python."""
    keep = key >= 0
    every = bool(keep.all())  # no copy of every column when no row is left out (territory, types)
    n_keys = max(n_keys, 1)
    gid = (year if every else year[keep]).astype(np.int64) * n_keys + (key if every else key[keep])
    if len(gid) and (gid[1:] > gid[:-1]).all():  # one row per group already, in order (the wards' own cells)
        return gid // n_keys, gid % n_keys, {name: (values if every else values[keep]).round().astype(np.int64)
                                              for name, values in columns.items()}
    size = n_years * n_keys
    groups = np.flatnonzero(np.bincount(gid, minlength=size))
    sums = {name: np.bincount(gid, weights=values if every else values[keep], minlength=size)[groups]
            .round().astype(np.int64) for name, values in columns.items()}
    return groups // n_keys, groups % n_keys, sums


_BLOCK_FIELDS = ("year", "code", "sex", "numerator", "denominator", "n_units", "n_reporting", "n_excluded", "gpi")


def _ratio_block(year: np.ndarray, per_unit: dict, key: np.ndarray, n_keys: int, n_years: int,
                 sexes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Groups by (year, key), each with its total row and (ratio) its girls' and boys' rows where some unit
    reported them; the girls-to-boys ratio of the two values (GPI) on every row of the group. The rows
    summed are units, or ward cells that already sum units (``_ward_cells``): sums of sums are the same."""
    g_year, g_key, s = _group_sums(year, n_years, key, n_keys, per_unit)
    G = len(g_year)
    s.update({f"n_excluded|{x}": _excluded(s, x) for x in sexes})
    if len(sexes) == 1:  # one row per group: the sums as they are
        return {"year": g_year.astype(np.int16), "code": g_key.astype(np.int32), "sex": np.zeros(G, np.int8),
                "numerator": s["numerator|total"], "denominator": s["denominator|total"], "n_units": s["n_units"],
                "n_reporting": s["n_reporting|total"], "n_excluded": s["n_excluded|total"],
                "gpi": np.full(G, np.nan)}
    keep = np.stack([np.ones(G, bool)] + [s[f"n_reporting|{x}"] > 0 for x in sexes[1:]], axis=1)
    flat = keep.ravel()
    group = np.repeat(np.arange(G), len(sexes))[flat]

    def by_sex(field):
        return np.stack([s[f"{field}|{x}"] for x in sexes], axis=1).ravel()[flat]

    gpi = np.full(G, np.nan)
    if len(sexes) == 3:
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(s["denominator|female"] > 0, s["numerator|female"] / s["denominator|female"] * 100, np.nan)
            m = np.where(s["denominator|male"] > 0, s["numerator|male"] / s["denominator|male"] * 100, np.nan)
            gpi = np.where(keep[:, 1] & keep[:, 2], f / m, np.nan)
        gpi[~np.isfinite(gpi)] = np.nan
    return {"year": g_year.astype(np.int16)[group], "code": g_key.astype(np.int32)[group],
            "sex": np.tile(np.arange(len(sexes), dtype=np.int8), G)[flat],
            "numerator": by_sex("numerator"), "denominator": by_sex("denominator"), "n_units": s["n_units"][group],
            "n_reporting": by_sex("n_reporting"), "n_excluded": by_sex("n_excluded"), "gpi": gpi[group]}


def _cohort_block(ind: Indicator, units: _Units, key: np.ndarray, n_keys: int, n_years: int) -> dict[str, np.ndarray]:
    """Numerator of year t over the denominator of year t - lag, each summed over its own year's units."""
    lag = int(ind.compute["lag"])
    num, den, present = units.num, units.den, units.present
    columns = {"num": np.nan_to_num(num), "den": np.nan_to_num(den), "n_units": np.ones(len(units)),
               "n_num": (~np.isnan(num)).astype(float), "bad_n": (present & np.isnan(num)).astype(float),
               "bad_d": (present & np.isnan(den)).astype(float)}
    g_year, g_key, s = _group_sums(units.year, n_years, key, n_keys, columns)
    dense = {}
    for name in ("n_units", *columns):
        dense[name] = np.zeros((n_years, max(n_keys, 1)), np.int64)
        dense[name][g_year, g_key] = s[name]
    exists = np.zeros((n_years, max(n_keys, 1)), bool)
    exists[g_year, g_key] = True
    both = np.zeros_like(exists)
    if lag < n_years:
        both[lag:] = exists[lag:] & exists[:n_years - lag]
    year, code = np.nonzero(both)
    earlier = year - lag
    return {"year": year.astype(np.int16), "code": code.astype(np.int32), "sex": np.zeros(len(year), np.int8),
            "numerator": dense["num"][year, code], "denominator": dense["den"][earlier, code],
            "n_units": dense["n_units"][year, code], "n_reporting": dense["n_num"][year, code],
            "n_excluded": dense["bad_n"][year, code] + dense["bad_d"][earlier, code],
            "gpi": np.full(len(year), np.nan)}


def _ward_cells(units: _Units, per_unit: dict[str, np.ndarray], n_years: int,
                n_wards: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The units summed by (year, ward): (year, ward code or -1, sums). Every geography is a union of wards,
    so its sums are sums of these cells: a country's half-million units become ~100,000 cells once, instead
    of being summed again for each level. Units without a ward keep a cell of their own (ward -1)."""
    ward = np.where(units.ward >= 0, units.ward, n_wards)
    year, cell, sums = _group_sums(units.year, n_years, ward, n_wards + 1, per_unit)
    return year, np.where(cell == n_wards, -1, cell), sums


def _blocks(ind: Indicator, keys: _Keys) -> list[tuple[str, dict[str, np.ndarray]]]:
    """(geo_level, block) for every breakdown of one indicator, each block sorted by year, code, sex."""
    units = _units(ind, keys)
    if not len(units):
        return []
    if ind.compute["method"] == "cohort":
        return [(level, _cohort_block(ind, units, key, len(keys.vocab[level]), keys.n_years))
                for level, key in keys.groupings(ind, units)
                if level not in ("ward", "ward_current")]  # cohorts move between schools and wards
    sexes = SEXES if ind.compute["method"] == "ratio" else ("total",)
    n_years = keys.n_years
    per_unit = _sex_columns(units, sexes)
    cell_year, cell_ward, cell_sums = _ward_cells(units, per_unit, n_years, len(keys.vocab["ward"]))
    geo = keys.geo_groupings(cell_year, cell_ward)
    # the levels above the ward from the cells' combinations of units above (a country: ~8,000 per year
    # instead of ~10,000 cells for each level); the ward levels from the cells
    above = [(level, key) for level, key in geo if level in keys.geo.levels]
    out = []
    if above:
        sizes = [len(keys.vocab[level]) for level, _ in above]
        g_year, g_codes, g_sums = _combination_sums(cell_year, n_years, [key for _, key in above], sizes, cell_sums)
        out += [(level, _ratio_block(g_year, g_sums, code, size, n_years, sexes))
                for (level, _), code, size in zip(above, g_codes, sizes)]
    out += [(level, _ratio_block(cell_year, cell_sums, key, len(keys.vocab[level]), n_years, sexes))
            for level, key in geo if level not in keys.geo.levels]
    if ind.compute["table"] != "xa_phuong":  # institution type and ownership: one pass over the units for both
        sizes = [len(keys.vocab["school_level"]), len(keys.vocab["ownership"])]
        g_year, g_codes, g_sums = _combination_sums(units.year, n_years, [units.school_type, units.ownership],
                                                    sizes, per_unit)
        out += [(level, _ratio_block(g_year, g_sums, code, size, n_years, sexes))
                for level, code, size in zip(("school_level", "ownership"), g_codes, sizes)]
    return out


def _combination_sums(year: np.ndarray, n_years: int, codes: list[np.ndarray], sizes: list[int],
                      columns: dict[str, np.ndarray]) -> tuple[np.ndarray, list[np.ndarray], dict[str, np.ndarray]]:
    """The rows summed by year and combination of codes (each code -1 allowed: kept as a value of its own):
    (year of each combination, each code of it, sums). A breakdown by any one of the codes is then a sum of
    these few combinations instead of another pass over every row: sums of sums are the same."""
    combined = np.zeros(len(year), np.int64)
    for code, size in zip(codes, sizes):  # mixed radix, one digit (code + 1) per breakdown
        combined *= size + 1
        combined += code + 1
    span = int(np.prod([size + 1 for size in sizes], dtype=np.float64))
    if span <= 50_000_000:  # the combinations that occur, numbered in order without sorting the rows
        distinct = np.flatnonzero(np.bincount(combined, minlength=span))
        number = np.zeros(span, np.int64)
        number[distinct] = np.arange(len(distinct))
        inverse = number[combined]
    else:
        distinct, inverse = np.unique(combined, return_inverse=True)
    g_year, g_key, sums = _group_sums(year, n_years, inverse.ravel(), len(distinct), columns)
    digits, out = distinct[g_key], []
    for size in reversed(sizes):
        out.append(digits % (size + 1) - 1)
        digits = digits // (size + 1)
    return g_year, out[::-1], sums


# --- the long table ------------------------------------------------------------------------------------------

def _word_codes(vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """(each word's code among the distinct words, in the smallest integer type; the distinct words, sorted).
    A vocabulary may repeat a word (the same code at two levels): both get the one code."""
    words = np.asarray(list(vocabulary), dtype=object)
    unique, inverse = np.unique(words.astype(str), return_inverse=True)
    small = np.int8 if len(unique) < 2**7 else np.int16 if len(unique) < 2**15 else np.int32
    return inverse.ravel().astype(small), unique


def _strings(codes: np.ndarray, vocabulary) -> pd.Categorical:
    """A text column from integer codes into a vocabulary, as a pandas categorical: the column holds the few
    distinct strings once and an integer per row (as Parquet stores it anyway), instead of millions of strings.
    The codes are remapped to the distinct words straight into the categorical's own code type (no int64
    column on the way)."""
    small, unique = _word_codes(vocabulary)
    return pd.Categorical.from_codes(small[codes], categories=unique, validate=False)


class _Names:
    """geo_name of each (level, year, code): Vietnamese labels for types and ownership, crosswalk names for
    units (as named that school year; today's wards by their latest name), without the ward's type prefix."""

    def __init__(self, keys: _Keys):
        self.keys, self.geo = keys, keys.geo
        self.names: list[str] = []
        self.ids: dict[str, int] = {}
        self.tables: dict[str, np.ndarray] = {}
        self.shorts: dict[str, int] = {}

    def _id(self, name: str) -> int:
        if name not in self.ids:
            self.ids[name] = len(self.names)
            self.names.append(name)
        return self.ids[name]

    def _short(self, name: str) -> int:
        """Id of the ward's name without its type prefix (the same name recurs every year)."""
        found = self.shorts.get(name)
        if found is None:
            found = self.shorts[name] = self._id(short_name(name))
        return found

    def table(self, level: str) -> np.ndarray:
        """(year, code) -> name id for one level."""
        if level in self.tables:
            return self.tables[level]
        keys, cw = self.keys, self.geo.crosswalk
        vocab = list(keys.vocab[level])
        years = range(keys.y0, keys.y0 + keys.n_years)
        if level == "school_level":
            labels = {c.code: c.vi for c in SCHOOL_TYPES}
            row = [self._id(labels.get(code, code)) for code in vocab]
            out = np.tile(np.asarray(row, dtype=np.int64), (keys.n_years, 1))
        elif level == "ownership":
            labels = {k: v["vi"] for k, v in ownership_groups().items()}
            row = [self._id(labels.get(code, code)) for code in vocab]
            out = np.tile(np.asarray(row, dtype=np.int64), (keys.n_years, 1))
        elif level == "ward_current":
            row = [self._short(cw.name_of(code)) for code in vocab]
            out = np.tile(np.asarray(row, dtype=np.int64), (keys.n_years, 1))
        elif level == "ward":  # 10,000 wards x 11 years at country scale: each distinct name shortened once,
            # each year's row once per set of names (the crosswalk shares them between years whose units agree)
            rows: dict[int, np.ndarray] = {}
            out = np.empty((keys.n_years, len(vocab)), np.int64)
            for k, names in enumerate(map(cw.names_at, years)):
                if id(names) not in rows:
                    every = np.asarray([names.get(code, code) for code in vocab], dtype=object)
                    codes, distinct = pd.factorize(every)
                    ids = np.asarray([self._short(name) for name in distinct.tolist()], dtype=np.int64)
                    rows[id(names)] = ids[codes]
                out[k] = rows[id(names)]
        else:
            unit = self.geo.territory_unit if level == self.geo.territory_level else {}
            out = np.asarray([[self._id(names.get(unit.get(y, code), unit.get(y, code))) for code in vocab]
                              for y, names in ((y, cw.names_at(y)) for y in years)],
                             dtype=np.int64).reshape(keys.n_years, len(vocab))
        self.tables[level] = out
        return out


def _segments(geo: Geography, keys: _Keys, level: str) -> tuple[np.ndarray, np.ndarray]:
    """(year, code) -> (first year of a new territory?, first year of the code's current territory) for a
    level above the wards: the crosswalk's wards under each unit, compared year to year. A unit none of whose
    wards moved since the year before (``Crosswalk.units_changed``) is the same territory without building
    its sets of wards; only the others are compared (``same_territory``)."""
    vocab = keys.vocab[level]
    years = np.arange(keys.y0, keys.y0 + keys.n_years)
    breaks = np.zeros((keys.n_years, len(vocab)), bool)
    starts = np.repeat(years[:, None], len(vocab), axis=1)  # a year outside the crosswalk sets: itself
    cw = geo.crosswalk
    position = {code: k for k, code in enumerate(vocab)}
    for code, seq in geo.series_units(level).items():
        k = position.get(code, -1)
        if k < 0:
            continue
        start = seq[0][0]
        for i, (y, unit) in enumerate(seq):
            if i:
                before, earlier = seq[i - 1][1], seq[i - 1][0]
                unchanged = earlier == y - 1 and before == unit and unit not in cw.units_changed(y, level)
                if not unchanged and not cw.same_territory(cw.wards_under(before, earlier), cw.wards_under(unit, y)):
                    breaks[y - keys.y0, k] = True
                    start = y
            starts[y - keys.y0, k] = start
    return breaks, starts


def _split(inds: list[Indicator], head_start: int = 1) -> tuple[list[int], list[int]]:
    """The indicators in two parts for ``parallel.in_two``: (here, there). Each indicator costs about the same
    (measured on the country: 40-65 ms each, cohorts and shares included); an indicator's table goes whole
    to one part, so each table's rows are matched to their institutions once; and the part computed here
    starts ``head_start`` indicator behind, for the names and series breaks it places meanwhile (~0.2 s)."""
    tables: dict[str, list[int]] = {}
    for i, ind in enumerate(inds):
        tables.setdefault(ind.compute["table"], []).append(i)
    parts: tuple[list[int], list[int]] = ([], [])
    load = [head_start, 0]
    for members in sorted(tables.values(), key=len, reverse=True):
        side = 0 if load[0] < load[1] else 1
        parts[side].extend(members)
        load[side] += len(members)
    return sorted(parts[0]), sorted(parts[1])


@dataclass
class _Layout:
    """Where each indicator's blocks go in the long table: their level and their codes among all levels."""

    inds: list[Indicator]
    keys: _Keys
    levels: list[str]
    level_offset: dict[str, int]
    code_vocab: list[str]  # every level's codes, one after the other: the global codes

    @classmethod
    def of(cls, inds: list[Indicator], keys: _Keys) -> "_Layout":
        levels = [*keys.geo.levels, *EXTRA_LEVELS]
        offsets = np.cumsum([0] + [len(keys.vocab[lv]) for lv in levels])
        return cls(inds, keys, levels, dict(zip(levels, offsets[:-1].tolist())),
                   [c for lv in levels for c in keys.vocab[lv]])

    def span(self, level: str) -> slice:
        """The level's codes among the global codes of every level."""
        return slice(self.level_offset[level], self.level_offset[level] + len(self.keys.vocab[level]))

    def blocks(self, indices: list[int]) -> list[dict[str, np.ndarray]]:
        """The blocks of these indicators, each code made global (a pure function of the keys: it may run
        in a forked child)."""
        out = []
        for i in indices:
            for level, block in _blocks(self.inds[i], self.keys):
                block["code"] += self.level_offset[level]
                block["indicator"], block["level"] = i, self.levels.index(level)
                out.append(block)
        return out


def _by_code(tables: list[np.ndarray]) -> np.ndarray:
    """Per-level (year, code) tables side by side: one (year, global code) table for every row at once."""
    return np.concatenate(tables, axis=1) if tables else np.zeros((0, 0))


def _territory_words(pairs: np.ndarray, code_vocab: list[str], n_years: int, y0: int) -> list[str]:
    """Territory words: every geo code (its own series), then "code@first year" for each territory used,
    ``pairs`` being code x n_years + first year - y0, sorted."""
    code, start = np.divmod(pairs, n_years)
    return code_vocab + [f"{code_vocab[c]}@{y0 + y}" for c, y in zip(code.tolist(), start.tolist())]


def _prepared(tables: dict[str, pd.DataFrame], crosswalk: Crosswalk, inds: list[Indicator]) -> _Keys:
    """The run's codes, with the data's geography (``keys.geo``). The text columns the keys read are
    factorized in a thread (Arrow's encoding runs without the interpreter lock) while the crosswalk's wards of
    the data's years are walked; the thread has ended when this returns (a fork may follow)."""
    factorized = _Factorized(tables)
    factorized.prefetch([("truong", "ma_xa_phuong"), ("xa_phuong", "ma_xa_phuong"), ("truong", "ma_truong"),
                         ("truong", "loai_truong"), ("truong", "loai_hinh"),
                         *((ind.compute["table"], "ma_truong") for ind in inds
                           if ind.compute["table"] not in ("truong", "xa_phuong"))])
    try:
        crosswalk.prepare(sorted({int(y) for t in ("truong", "xa_phuong") if t in tables
                                  for y in pd.unique(tables[t]["year"])}))
        return _Keys(tables, build_geography(tables, crosswalk, factorized), factorized)
    finally:
        factorized.finish()


def _placed_tables(layout: _Layout, names: _Names) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, global code) -> name id, series break, first year of the territory (the levels with series
    breaks; elsewhere the year itself): computed while the other process sums its part."""
    keys, geo = layout.keys, layout.keys.geo
    name = _by_code([names.table(level) for level in layout.levels]).astype(np.int32)
    breaks = np.zeros(name.shape, bool)
    starts = np.repeat(np.arange(keys.y0, keys.y0 + keys.n_years)[:, None], name.shape[1], axis=1)
    if any(ind.population_based for ind in layout.inds):
        for level in geo.levels:
            breaks[:, layout.span(level)], starts[:, layout.span(level)] = _segments(geo, keys, level)
    return name, breaks, starts


def _summed(layout: _Layout, names: _Names, jobs: int,
            rows: int) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[dict[str, np.ndarray]]]:
    """(``_placed_tables``, every indicator's blocks): with ``jobs`` >= 2 on enough rows, the indicators in two
    processes (``parallel.in_two``), the placed tables here meanwhile; the result is the same."""
    everything = list(range(len(layout.inds)))
    if jobs >= 2 and rows >= PARALLEL_ROWS and parallel.available():
        here, there = _split(layout.inds)
        (by_code, mine), theirs = parallel.in_two(lambda: (_placed_tables(layout, names), layout.blocks(here)),
                                                  lambda: layout.blocks(there), jobs=jobs)
        return by_code, mine + theirs
    return _placed_tables(layout, names), layout.blocks(everything)


def _joined(blocks: list[dict[str, np.ndarray]], n_inds: int, n_years: int, threads: int) -> dict[str, np.ndarray]:
    """The blocks as the long table's integer columns, in its final order (indicator, year, then level, code
    and sex as inside the blocks): slices, concatenated once. The blocks are consumed: each field is deleted
    from them once joined, so the next field reuses its memory; ``indicator`` and ``level`` are small codes
    (every intermediate column is fresh memory)."""
    pieces = [(block, np.searchsorted(block["year"], np.arange(n_years + 1))) for block in blocks]
    slices = [(block, bounds[y], bounds[y + 1]) for i in range(n_inds) for y in range(n_years)
              for block, bounds in pieces if block["indicator"] == i and bounds[y] < bounds[y + 1]]
    lengths = [b - a for _, a, b in slices]
    col = {f: np.repeat(np.array([block[f] for block, _, _ in slices], dtype=np.int16), lengths)
           for f in ("indicator", "level")}

    def joined(fields: tuple[str, ...]) -> dict[str, np.ndarray]:
        out = {}
        for f in fields:
            out[f] = np.concatenate([block[f][a:b] for block, a, b in slices])
            for block, _ in pieces:
                del block[f]
        return out

    for part in parallel.at_once(*(lambda fs=fs: joined(fs) for fs in (_BLOCK_FIELDS[::2], _BLOCK_FIELDS[1::2])),
                                 threads=threads):
        col.update(part)
    return col


def _placed_columns(layout: _Layout, names: _Names, by_code: tuple[np.ndarray, np.ndarray, np.ndarray],
                    year: np.ndarray, code: np.ndarray, by_indicator: list) -> dict:
    """Names, series breaks (population-based indicators only) and territories of each row, from its (year,
    global code): the (year, code) tables turned into each column's codes first, then one lookup per row."""
    keys, inds = layout.keys, layout.inds
    name, breaks, starts = by_code
    n_codes = name.shape[1]
    cell = np.multiply(year, n_codes, dtype=np.int32)
    cell += code  # (year, code) as one number
    segmented = np.zeros(n_codes, bool)  # the levels with series breaks
    for level in keys.geo.levels:
        segmented[layout.span(level)] = True
    series_break, used = np.zeros(len(cell), bool), np.zeros(name.size, bool)
    for rows, ind in zip(by_indicator, inds):
        if ind.population_based:
            series_break[rows] = breaks.ravel()[cell[rows]]
            used[cell[rows]] = True
    # a population-based row at a level with breaks is in the territory "code@first year"; any other row
    # in its code's own series
    pair = np.arange(n_codes) * keys.n_years + (starts - keys.y0)  # (code, first year) as one number
    in_segment = used.reshape(name.shape) & segmented
    pairs = np.unique(pair[in_segment])
    word = np.broadcast_to(np.arange(n_codes), name.shape).copy()
    word[in_segment] = n_codes + np.searchsorted(pairs, pair[in_segment])
    small, unique = _word_codes(_territory_words(pairs, layout.code_vocab, keys.n_years, keys.y0))
    own, in_territory = small[:n_codes], small[word].ravel()
    territory = np.empty(len(cell), small.dtype)
    for rows, ind in zip(by_indicator, inds):
        territory[rows] = in_territory[cell[rows]] if ind.population_based else own[code[rows]]
    name_small, name_words = _word_codes(names.names)
    return {"series_break": series_break,
            "geo_name": pd.Categorical.from_codes(name_small[name].ravel()[cell], categories=name_words,
                                                  validate=False),
            "territory_id": pd.Categorical.from_codes(territory, categories=unique, validate=False)}


def _percent(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    out = _divided(part, whole)
    out *= 100
    return out


def _flag_columns(den: np.ndarray, value: np.ndarray, n_excluded: np.ndarray) -> dict:
    """The four flags as bool columns, and ``flags``: the names of a row's flags joined by ";" (a categorical
    over the 16 combinations, from one small code per row)."""
    small = _registry_file().get("small_denominator", 30)
    flags = {"denominator_zero": den == 0, "above_100": value > 100, "excluded_values": n_excluded > 0,
             "small_denominator": (den > 0) & (den < small)}
    code = np.zeros(len(value), np.int8)
    for k, flag in enumerate(flags.values()):
        code |= flag.view(np.int8) << k
    text = [";".join(n for k, n in enumerate(flags) if c >> k & 1) for c in range(1 << len(flags))]
    return {**{f"flag_{k}" if k != "denominator_zero" else "flag_zero_denominator": v for k, v in flags.items()},
            "flags": _strings(code, text)}


def compute(tables: dict[str, pd.DataFrame], crosswalk: Crosswalk,
            indicators: dict[str, Indicator] | None = None, jobs: int = 1,
            targets: pd.DataFrame | None = None) -> pd.DataFrame:
    """All indicators for all years: the long table of DESIGN §5 (pure function of its inputs).

    Rows are sorted by indicator (registry order), year, level (territory down to ward, today's wards,
    institution type, ownership), geo_code and sex (total, female, male). With ``jobs`` >= 2, the
    indicators' sums are computed in two processes (``parallel.in_two``); the result is the same. With
    ``targets``, the columns of ``with_targets`` are added, computed with the text columns."""
    reg = indicators or registry()
    ids, inds = list(reg), list(reg.values())
    keys = _prepared(tables, crosswalk, inds)
    layout, names = _Layout.of(inds, keys), _Names(keys)
    by_code, blocks = _summed(layout, names, jobs, sum(len(t) for t in tables.values()))
    if not blocks:
        empty = _typed(pd.DataFrame({c: [] for c in OUTPUT_COLUMNS}))
        return empty if targets is None else with_targets(empty, targets)
    threads = 2 if jobs >= 2 else 1
    col = _joined(blocks, len(inds), keys.n_years, threads)
    del blocks
    num, den, year, code = col["numerator"], col["denominator"], col["year"], col["code"]
    population_based = np.array([x.population_based for x in inds], bool)[col["indicator"]]
    rows_of = _indicator_rows(col["indicator"], len(inds))  # no indicator's rows (none), then each one's: slices
    value = _percent(num, den)  # first: the target columns need it
    calendar_year = np.add(year, keys.y0, dtype=np.int64)

    # every other column at once, two at a time, the longest first: the target columns, the interval, the
    # names and territories, the flags, the reporting share, then the text columns from integer codes
    texts = {"indicator_id": (col["indicator"], ids), "geo_level": (col["level"], layout.levels),
             "geo_code": (code, layout.code_vocab), "sex": (col["sex"], SEXES),
             "cross_check_of": (col["indicator"], [x.cross_check_of or "" for x in inds]),
             "direction": (col["indicator"], [x.direction for x in inds])}
    aim_years = [] if targets is None else target_years(targets)
    tasks = {**{("aim", y): lambda y=y: _target_columns(targets, y, ids, rows_of, value, calendar_year)
                for y in aim_years},
             "ci": lambda: wilson_interval(num, den),
             "placed": lambda: _placed_columns(layout, names, by_code, year, code, rows_of[1:]),
             "flags": lambda: _flag_columns(den, value, col["n_excluded"]),
             "reporting_share": lambda: _percent(col["n_reporting"], col["n_units"]),
             **{name: lambda a=a: _strings(*a) for name, a in texts.items()}}
    made = dict(zip(tasks, parallel.at_once(*tasks.values(), threads=threads)))
    aimed = [made.pop(("aim", y)) for y in aim_years]
    (ci_low, ci_high), placed_cols, flag_cols = made.pop("ci"), made.pop("placed"), made.pop("flags")
    reporting_share, series_break = made.pop("reporting_share"), placed_cols.pop("series_break")
    text = {**made, **placed_cols, "flags": flag_cols.pop("flags")}  # the text columns
    # sanity: sums of counts, never rates; a subset never exceeds its total where cleaning held
    main = np.array([not x.cross_check_of for x in inds], bool)
    assert not main[col["indicator"][np.flatnonzero(num > den)]].any(), "a main indicator has numerator > denominator"
    del by_code, year, code, texts, tasks, made
    for f in ("indicator", "level", "sex", "year", "code"):
        del col[f]
    out = pd.DataFrame(copy=False, data={  # the arrays are new: no copy, no consolidation
        **text, "year": calendar_year, "numerator": num, "denominator": den, "value": value,
        "ci_low": ci_low, "ci_high": ci_high, "n_units": col["n_units"], "n_reporting": col["n_reporting"],
        "reporting_share": reporting_share, "n_excluded": col["n_excluded"], **flag_cols,
        "series_break": series_break, "gpi": col["gpi"], "population_based": population_based,
    })
    out = _typed(out[OUTPUT_COLUMNS])
    return _added(out, aimed) if aimed else out


TEXT_COLUMNS = ("indicator_id", "geo_level", "geo_code", "geo_name", "sex", "flags", "territory_id",
                "cross_check_of", "direction")


def _typed(out: pd.DataFrame) -> pd.DataFrame:
    """Column types of the indicator table: text as categoricals (few distinct values, millions of rows at
    country scale), counts as int64, flags as bool."""
    for col in TEXT_COLUMNS:
        if not isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype("string").astype("category")
    for col in ("numerator", "denominator", "n_units", "n_reporting", "n_excluded"):
        out[col] = out[col].astype("int64")
    out["year"] = out["year"].astype("int64")
    for col in ("flag_zero_denominator", "flag_above_100", "flag_excluded_values", "flag_small_denominator",
                "series_break", "population_based"):
        out[col] = out[col].astype(bool)
    return out


# --- targets ------------------------------------------------------------------------------------------------

def load_targets(raw_dir: Path | None = None) -> pd.DataFrame:
    path = config.raw_dir(raw_dir) / config.TARGETS_FILE
    try:
        t = pd.read_csv(path, dtype={"indicator_id": "string", "comparator": "string", "source": "string"},
                        encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataFileError(path.name, "Không tìm thấy tệp chỉ tiêu.", "The targets file is missing.",
                            code="targets_missing") from None
    need = ["indicator_id", "target_year", "target_value", "comparator", "source"]
    missing = [c for c in need if c not in t]
    if missing:
        raise DataFileError(path.name, f"Thiếu cột: {', '.join(missing)}.", f"Missing column(s): {', '.join(missing)}.",
                            column=missing[0], code="targets_columns")
    bad = ~t["comparator"].isin([">=", ">", "<", "<="]) | t["target_value"].isna() | t["target_year"].isna()
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise DataFileError(path.name, "Chỉ tiêu thiếu giá trị/năm hoặc phép so sánh không hợp lệ (>=, >, <, <=).",
                            "A target lacks a value/year or has an invalid comparator (>=, >, <, <=).",
                            row=i + 2, code="targets_row")
    t["target_year"] = t["target_year"].astype("int64")
    t["target_value"] = t["target_value"].astype(float)
    return t[need]


_COMPARE = {">=": np.greater_equal, ">": np.greater, "<": np.less, "<=": np.less_equal}


def meets(value, target, comparator: str):
    return _COMPARE[comparator](np.asarray(value, dtype=float), target)


def target_years(targets: pd.DataFrame) -> list[int]:
    return sorted(int(y) for y in targets["target_year"].unique())


def _divided(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """part / whole, NaN where whole is not positive, written into one new array (no full-length temporaries)."""
    return np.divide(part, whole, out=np.full(len(part), np.nan), where=whole > 0)


def _indicator_rows(codes: np.ndarray, n: int) -> list:
    """The rows of each code -1..n-1: slices when the codes are sorted (the long table is ordered by
    indicator), else row numbers: one code path, no full-length mask per indicator on the sorted table."""
    if len(codes) < 2 or (codes[1:] >= codes[:-1]).all():
        bounds = np.searchsorted(codes, np.arange(-1, n + 1))
        return [slice(a, b) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]
    return [np.flatnonzero(codes == k) for k in range(-1, n)]


def _target_columns(targets: pd.DataFrame, target_year: int, ids: list, rows_of: list, value: np.ndarray,
                    year: np.ndarray) -> dict[str, np.ndarray]:
    """For one target year of the plan: the target, the gap, the change needed per year and whether the value
    meets it, ``rows_of`` being the rows of no indicator, then of each of ``ids`` (``_indicator_rows``). Each
    indicator's target and comparator are looked up once (a dozen) and applied to its rows (a country's table
    has millions)."""
    t = targets[targets["target_year"] == target_year].set_index("indicator_id")
    ids = pd.Series(np.asarray(ids, dtype=object))
    aim = [(np.nan, None), *zip(ids.map(t["target_value"]).astype(float).tolist(), ids.map(t["comparator"]).tolist())]
    n = len(value)
    target, gap, needed = np.empty(n), np.empty(n), np.empty(n)
    met, unknown = np.zeros(n, bool), np.ones(n, bool)  # unknown: no comparator for the row's indicator, or no value
    for rows, (goal, comparator) in zip(rows_of, aim):
        v = value[rows]
        target[rows] = goal
        gap[rows] = part = goal - v
        years_left = np.subtract(target_year, year[rows])
        needed[rows] = _divided(part, years_left)
        if not pd.isna(comparator):
            with np.errstate(invalid="ignore"):
                met[rows] = meets(v, goal, comparator)  # a comparison with NaN is False
            unknown[rows] = np.isnan(v)
    return {f"target_{target_year}": target, f"gap_{target_year}": gap, f"needed_per_year_{target_year}": needed,
            f"meets_{target_year}": pd.arrays.BooleanArray(met, unknown)}


def _added(frame: pd.DataFrame, parts: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """``frame`` with these columns added: the arrays themselves (pandas' Series copies an array by default)."""
    out = frame.copy(deep=False)  # copy-on-write: the new columns never reach ``frame``
    for part in parts:
        for name, values in part.items():
            out[name] = pd.Series(values, index=out.index, copy=False)
    return out


def with_targets(ind: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """Add, for each target year of the plan, the target, the gap and the change needed per year
    (``_target_columns``)."""
    codes, ids = pd.factorize(ind["indicator_id"], use_na_sentinel=True)
    rows_of = _indicator_rows(codes, len(ids))
    value, year = ind["value"].to_numpy(dtype=float), ind["year"].to_numpy()
    return _added(ind, [_target_columns(targets, y, list(ids), rows_of, value, year) for y in target_years(targets)])


# --- action lists ------------------------------------------------------------------------------------------

ACTION_FLAGS = (("CT07", "cong_trinh_ve_sinh"), ("CT19", "ho_tro_tam_ly"), ("CT20A", "csvc_khuyet_tat"))


def institutions_lacking(truong: pd.DataFrame, year: int, lang: str = "vi") -> pd.DataFrame:
    """Institutions that, in ``year``, lack sanitation, psychological support or adapted facilities."""
    reg = registry()
    groups = institution_groups()
    rows = []
    t = truong[truong["year"] == year]
    for iid, flag in ACTION_FLAGS:
        members = groups[reg[iid].compute.get("institutions", "all")]
        scope = t[t["loai_truong"].isin(members)]
        lacking = scope[scope[flag].ne(True)]
        for r in lacking.itertuples(index=False):
            unknown = pd.isna(getattr(r, flag))
            rows.append({
                "indicator_id": iid, "ma_truong": r.ma_truong, "ten_truong": r.ten_truong,
                "loai_truong": category_label(SCHOOL_TYPES, r.loai_truong, lang) if pd.notna(r.loai_truong) else "",
                "loai_hinh": category_label(OWNERSHIP_TYPES, r.loai_hinh, lang) if pd.notna(r.loai_hinh) else "",
                "xa_phuong": short_name(r.xa_phuong) if pd.notna(r.xa_phuong) else "",
                "status": ("unknown" if unknown else "lacking"),
            })
    cols = ["indicator_id", "ma_truong", "ten_truong", "loai_truong", "loai_hinh", "xa_phuong", "status"]
    return pd.DataFrame(rows, columns=cols)


def wards_furthest(indicators: pd.DataFrame, targets: pd.DataFrame, year: int, target_year: int,
                   n: int = 3) -> pd.DataFrame:
    """For each main indicator, the wards furthest from the plan's target in ``year`` (shortfall > 0)."""
    w = indicators[(indicators["geo_level"] == "ward") & (indicators["sex"] == "total")
                   & (indicators["year"] == year) & (indicators["cross_check_of"] == "")]
    t = targets[targets["target_year"] == target_year].set_index("indicator_id")
    w = w[w["indicator_id"].isin(t.index) & w["value"].notna()].copy()
    w["target"] = w["indicator_id"].map(t["target_value"])
    sign = np.where(w["direction"] == "decrease", -1.0, 1.0)
    w["shortfall"] = (w["target"] - w["value"]) * sign
    w = w[w["shortfall"] > 0].sort_values(["indicator_id", "shortfall"], ascending=[True, False])
    cols = ["indicator_id", "geo_code", "geo_name", "value", "target", "shortfall", "numerator", "denominator"]
    return w.groupby("indicator_id", sort=False).head(n)[cols].reset_index(drop=True)


# --- load / process / save -----------------------------------------------------------------------------------

def load(processed_dir: Path | None = None, raw_dir: Path | None = None):
    from analysis.clean import load_tables

    tables = load_tables(processed_dir)
    return tables, Crosswalk.load(raw_dir), load_targets(raw_dir)


def process(tables, crosswalk, targets, jobs: int = 1) -> pd.DataFrame:
    with without_huge_pages():  # one pass over fresh memory: huge pages cost more than they give (allocator.py)
        return compute(tables, crosswalk, jobs=jobs, targets=targets)  # the targets' columns made with the text


def save(frame: pd.DataFrame, processed_dir: Path | None = None) -> None:
    """indicators.parquet and indicators.csv, written at once: Arrow writes the Parquet file in a thread
    without holding the interpreter, while the CSV's rows are formatted (a country: 3 s of 11 saved)."""
    from concurrent.futures import ThreadPoolExecutor

    folder = config.processed_dir(processed_dir)
    with staged(folder) as st:
        with ThreadPoolExecutor(1) as pool:  # left only when the thread is done, whatever happened
            parquet = pool.submit(st.add_parquet, "indicators.parquet", frame)
            st.add_csv("indicators.csv", frame)
            parquet.result()
        st.commit()


def load_indicators(processed_dir: Path | None = None, columns: list[str] | None = None) -> pd.DataFrame:
    """The indicator table; ``columns``: only those (a country's table has 40 columns and millions of rows)."""
    path = config.processed_dir(processed_dir) / "indicators.parquet"
    if not path.exists():
        raise AnalysisError("Chưa có bảng chỉ tiêu; hãy chạy 'python -m analysis indicators'.",
                            "No indicators yet; run 'python -m analysis indicators' first.")
    return pd.read_parquet(path, columns=columns)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processed-dir", help="thư mục dữ liệu đã làm sạch và kết quả (mặc định data/processed)")
    parser.add_argument("--raw-dir", help="thư mục chứa chi_tieu_ke_hoach.csv và don_vi_hanh_chinh.csv (mặc định data/raw)")
    parser.add_argument("--jobs", type=int, default=config.available_cores(),
                        help="số lõi CPU dùng cho dữ liệu lớn / cores used on large data "
                             f"(mặc định {config.available_cores()}; kết quả như nhau / same result)")


def run(args: argparse.Namespace) -> int:
    tables, crosswalk, targets = load(args.processed_dir, args.raw_dir)
    frame = process(tables, crosswalk, targets, jobs=args.jobs)
    save(frame, args.processed_dir)
    n_ind = frame["indicator_id"].nunique()
    years = f"{frame['year'].min()}–{frame['year'].max()}" if len(frame) else "—"
    print(f"{len(frame):,} dòng/rows, {n_ind} chỉ tiêu/indicators, {years} -> "
          f"{config.display_path(config.processed_dir(args.processed_dir))}/indicators.parquet, indicators.csv")
    return 0
