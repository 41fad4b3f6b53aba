"""Wards, their changes over time and the hierarchy above them, read from the crosswalk file.

``data/raw/don_vi_hanh_chinh.csv`` has one row per unit version (a code keeps its territory; a new name or
type for the same territory is a new version of the same code) and, where a unit ended, one row per
successor with ``mapping`` whole or partial. From it this module answers: which ward does a name written
in a workbook mean that school year; which units are above it; which historical wards add up exactly to a
ward of today; and whether a set of wards covers the same territory as last year's (a series break if not).
Nothing here is specific to Bến Cát: a province or the whole country is the same file with more rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import config
from analysis.errors import DataFileError
from analysis.template import fold

COLUMNS = ["unit_code", "unit_name", "unit_type", "level", "parent_code", "valid_from", "valid_to",
           "successor_code", "mapping", "source", "note"]
LEVELS = ("ward", "district", "province", "country")
_PREFIX = re.compile(r"^(phuong|xa|thi tran|tt|p|x)\s+(?=\S)")


def school_year_start(year: int) -> date:
    """The date a reporting year's school year starts (2025 -> 5 Sept 2024)."""
    return date(year - 1, 9, 5)


def school_year_end(year: int) -> date:
    return date(year, 5, 31)


def name_key(name: object) -> str:
    """Ward name key without its type prefix: 'P. Mỹ Phước', 'Phường Mỹ Phước', 'my phuoc' -> 'myphuoc'."""
    words = re.sub(r"[^0-9a-z]+", " ", _spaced_fold(str(name))).strip()
    return _PREFIX.sub("", words).replace(" ", "")


def _spaced_fold(text: str) -> str:
    import unicodedata

    s = unicodedata.normalize("NFD", text).replace("đ", "d").replace("Đ", "D")
    return "".join(ch for ch in s if not unicodedata.combining(ch)).lower()


def positions(index: pd.Index, values) -> np.ndarray:
    """Position of each of ``values`` in ``index`` (-1: not in it). The values are passed as an object Index:
    given a list or an array, pandas first infers a text type for them, which made each lookup 5-6 times
    slower (measured: 117,000 codes in 39 ms against 6 ms)."""
    if not isinstance(values, pd.Index) or values.dtype != object:
        values = pd.Index(np.asarray(values, dtype=object), dtype=object)
    return index.get_indexer(values)


def short_name(unit_name: str) -> str:
    """'Phường Mỹ Phước' -> 'Mỹ Phước' (for tables and charts)."""
    return re.sub(r"^(Phường|Xã|Thị trấn)\s+", "", unit_name)


@dataclass(frozen=True)
class WardMatch:
    code: str | None
    name: str | None
    status: str  # "ok", "unknown", "ambiguous", "outside_year" (exists, but not valid that school year)
    candidates: tuple[str, ...] = ()


class Crosswalk:
    """The administrative units of the crosswalk file and how they changed."""

    def __init__(self, frame: pd.DataFrame, source: str = config.CROSSWALK_FILE):
        self.source = source
        frame = _validate(frame, source)
        self.versions = (
            frame.drop(columns=["successor_code", "mapping"]).drop_duplicates(["unit_code", "valid_from"])
            .reset_index(drop=True)
        )
        succ = frame[frame["successor_code"].notna()]
        self.successors = succ[["unit_code", "successor_code", "mapping"]].drop_duplicates().reset_index(drop=True)
        self.versions["name_key"] = self.versions["unit_name"].map(name_key)

    @classmethod
    def load(cls, raw_dir: str | Path | None = None) -> "Crosswalk":
        path = config.raw_dir(raw_dir) / config.CROSSWALK_FILE
        if not path.is_file():
            raise DataFileError(path.name, "Không tìm thấy tệp danh mục đơn vị hành chính.",
                                "The administrative-unit crosswalk file is missing.", code="crosswalk_missing")
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except Exception as exc:
            raise DataFileError(path.name, f"Không đọc được tệp CSV: {exc}", f"Cannot read the CSV: {exc}",
                                code="crosswalk_unreadable") from None
        return cls(frame, path.name)

    # --- one school year ------------------------------------------------------------------------------
    def valid_at(self, day: date, level: str | None = None) -> pd.DataFrame:
        return self.versions.iloc[self._valid_positions(day, level)]

    @cached_property
    def _arrays(self) -> dict[str, np.ndarray]:
        """The version columns the yearly questions read, as numpy arrays (no pandas per question: a country
        asks them for 10,000 wards x 11 years)."""
        v = self.versions
        return {"from": v["valid_from"].to_numpy("datetime64[ns]"), "to": v["valid_to"].to_numpy("datetime64[ns]"),
                "level": v["level"].to_numpy(object, na_value=None),
                "code": v["unit_code"].to_numpy(object, na_value=None),
                "name": v["unit_name"].to_numpy(object, na_value=None),
                "parent": v["parent_code"].to_numpy(object, na_value=None)}

    def _valid_positions(self, day: date, level: str | None = None) -> np.ndarray:
        """Positions (in file order) of the versions valid on ``day``: from and to inclusive, open ends open."""
        a, t = self._arrays, np.datetime64(day, "ns")
        mask = (np.isnat(a["from"]) | (a["from"] <= t)) & (np.isnat(a["to"]) | (a["to"] >= t))
        if level is not None:
            mask &= a["level"] == level
        return np.flatnonzero(mask)

    def _kept(self, name: str, key, build: Callable[[], Any]) -> Any:
        """``build()`` once per ``key`` of the question ``name``: a crosswalk is read once and never changes,
        and its yearly questions are asked again for every indicator, level and ward."""
        cache = self.__dict__.setdefault(f"_kept_{name}", {})
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def _during_positions(self, year: int, level: str | None = None) -> np.ndarray:
        """``units_during`` as positions: valid at the school year's start, then those created during it
        (kept: the parents, the walk and their keys all ask for them)."""
        def build() -> np.ndarray:
            start = self._valid_positions(school_year_start(year), level)
            end = self._valid_positions(school_year_end(year), level)
            codes = self._arrays["code"]
            later = ~pd.Index(codes[end], dtype=object).isin(codes[start])  # hash lookups, no Python loop
            return np.concatenate([start, end[later]])

        return self._kept("during", (year, level), build)

    def _yearly(self, name: str, year: int, key: Callable[[], bytes], build: Callable[[], Any]) -> Any:
        """A per-year answer, built once per distinct ``key`` (the positions of the unit versions it depends
        on): most years of a crosswalk have the same units as the year before, and share the answer."""
        return self._kept(f"{name}_by_year", year, lambda: self._kept(f"{name}_by_key", key(), build))

    def _units_key(self, year: int) -> bytes:
        """What a year's walk depends on: its units (the parents) and its wards."""
        return self._during_positions(year).tobytes() + b"|" + self._during_positions(year, "ward").tobytes()

    def wards_of_year(self, year: int) -> pd.DataFrame:
        """Wards valid at the start of the school year, and those created during it (named either way)."""
        return self._kept("wards_of_year", year, lambda: self.units_during(year, "ward"))

    def units_during(self, year: int, level: str | None = None) -> pd.DataFrame:
        """Units (of one level, or all) valid at the start of the school year, and those created during it."""
        return self.versions.iloc[self._during_positions(year, level)].reset_index(drop=True)

    def match_ward(self, text: object, year: int, *, by_code: bool = False) -> WardMatch:
        """Which ward a name (or code) written in that school year's workbook means."""
        wards = self._ward_index(year)
        key = str(text).strip().upper() if by_code else name_key(text)
        table = wards["code"] if by_code else wards["name"]
        hits = table.get(key, ())
        if len(hits) == 1:
            code = hits[0]
            return WardMatch(code, self.name_of(code, year), "ok")
        if len(hits) > 1:
            return WardMatch(None, None, "ambiguous", tuple(hits))
        any_year = self.versions[self.versions["level"] == "ward"]
        other = any_year[(any_year["unit_code"] == key) if by_code else (any_year["name_key"] == key)]
        if len(other):
            return WardMatch(None, None, "outside_year", tuple(other["unit_code"].unique()))
        return WardMatch(None, None, "unknown")

    def _ward_index(self, year: int) -> dict[str, dict[str, tuple[str, ...]]]:
        def build() -> dict[str, dict[str, tuple[str, ...]]]:
            wards = self.wards_of_year(year)
            by_name = wards.groupby("name_key")["unit_code"].agg(lambda s: tuple(dict.fromkeys(s)))
            return {"name": by_name.to_dict(), "code": {c: (c,) for c in wards["unit_code"]}}

        return self._kept("ward_index", year, build)

    @cached_property
    def _latest_names(self) -> dict[str, str]:
        """code -> the name of its last version (in file order)."""
        last = self.versions.drop_duplicates("unit_code", keep="last")
        return dict(zip(last["unit_code"].tolist(), last["unit_name"].tolist()))

    def names_at(self, year: int) -> dict[str, str]:
        """code -> ``name_of(code, year)`` for every unit: the first version (in file order) valid at the start
        of the school year, else the latest name. One pass over numpy arrays per year, then dictionary lookups."""
        def build(pos: np.ndarray) -> dict[str, str]:
            valid: dict[str, str] = {}
            for code, name in zip(self._arrays["code"][pos].tolist(), self._arrays["name"][pos].tolist()):
                valid.setdefault(code, name)  # the first valid version of a code, in file order
            return {**self._latest_names, **valid}

        def start() -> np.ndarray:  # kept: the answer's key and its build both read it
            return self._kept("valid_at_start", year, lambda: self._valid_positions(school_year_start(year)))

        return self._yearly("names", year, lambda: start().tobytes(), lambda: build(start()))

    def name_of(self, code: str, year: int | None = None) -> str:
        """The unit's name in that school year (its latest name when no year is given)."""
        names = self._latest_names if year is None else self.names_at(year)
        return names.get(code, code)

    # --- hierarchy ------------------------------------------------------------------------------------------
    @cached_property
    def level_of(self) -> dict[str, str]:
        a = self._arrays  # Python lists, not a walk over the text column value by value
        return dict(zip(a["code"].tolist(), a["level"].tolist()))

    def parents_at(self, year: int) -> dict[str, str]:
        """unit -> parent for the units of a school year (valid at its start, or created during it)."""
        return dict(self._parents(year))

    def _parents(self, year: int) -> dict[str, str]:
        def build() -> dict[str, str]:
            pos = self._during_positions(year)
            parent = self._arrays["parent"][pos]
            known = np.flatnonzero(parent != None)  # noqa: E711 (elementwise on an object array)
            return dict(zip(self._arrays["code"][pos][known].tolist(), parent[known].tolist()))

        return self._yearly("parents", year, lambda: self._during_positions(year).tobytes(), build)

    def _above(self, code: str, parents: dict[str, str]) -> list[str]:
        """Every unit above ``code``, nearest first (a chain that loops back stops where it would repeat)."""
        out: list[str] = []
        seen = {code}
        cur = parents.get(code)
        while cur and cur not in seen:
            seen.add(cur)
            out.append(cur)
            cur = parents.get(cur)
        return out

    def ancestors_from(self, code: str, parents: dict[str, str]) -> dict[str, str]:
        """level -> code of every unit above ``code`` (levels above ward only)."""
        return {self.level_of.get(unit, "?"): unit for unit in self._above(code, parents)}

    def ancestry(self, year: int, wards) -> dict[str, np.ndarray]:
        """level -> the code of the unit of that level above each of ``wards`` (None: none), for one school
        year: ``ancestors_from`` for many wards at once. The year's own wards are walked once and kept (the
        data's wards and ``wards_under_all`` both ask); other codes are walked as they come."""
        known, walked = self._year_ancestry(year)
        wards = list(wards)
        where = positions(known, wards)
        found = where >= 0
        if found.all():  # the levels these wards have (the year's other wards may have more)
            taken = {level: column[where] for level, column in walked.items()}
            return {level: column for level, column in taken.items() if (column != None).any()}  # noqa: E711
        other = self._walk(year, [w for w, ok in zip(wards, found) if not ok])
        out = {}
        for level in dict.fromkeys([*walked, *other]):
            column = np.full(len(wards), None, dtype=object)
            if level in walked:
                column[found] = walked[level][where[found]]
            if level in other:
                column[~found] = other[level]
            if (column != None).any():  # noqa: E711
                out[level] = column
        return out

    def prepare(self, years) -> None:
        """Walk these school years' wards now (kept: ``ancestry`` then only looks them up), e.g. while the data
        is being read elsewhere."""
        for year in years:
            self._year_ancestry(int(year))

    def _year_ancestry(self, year: int) -> tuple[pd.Index, dict[str, np.ndarray]]:
        """The year's own wards (``wards_of_year``'s codes) and their ``_walk``."""
        def build() -> tuple[pd.Index, dict[str, np.ndarray]]:
            codes = self._arrays["code"][self._during_positions(year, "ward")]
            wards = pd.Index(list(dict.fromkeys(codes.tolist())), dtype=object)
            return wards, self._walk(year, wards.tolist())

        return self._yearly("ancestry", year, lambda: self._units_key(year), build)

    def _walk(self, year: int, wards: list) -> dict[str, np.ndarray]:
        """``ancestry`` computed: the wards under one parent share the chain above it, so it is walked once per
        parent (a country has 10,000 wards and 700 districts) and spread to the wards by integer codes; a ward
        is walked on its own only where its parent's chain runs back through it."""
        parents = self._parents(year)
        wards = list(wards)
        codes, distinct = pd.factorize(np.asarray([parents.get(w) for w in wards], dtype=object),
                                       use_na_sentinel=True)
        chains, paths = [], []
        for parent in distinct.tolist():
            path = [parent, *self._above(parent, parents)]
            chains.append({self.level_of.get(unit, "?"): unit for unit in path})
            paths.append(set(path))
        levels = list(dict.fromkeys(level for chain in chains for level in chain))
        out = {level: np.asarray([chain.get(level) for chain in chains] + [None], dtype=object)[codes]
               for level in levels}  # code -1 (no parent) takes the last entry, None
        anywhere = set().union(*paths)
        for i in (i for i, ward in enumerate(wards) if ward in anywhere and codes[i] >= 0 and ward in paths[codes[i]]):
            chain = self.ancestors_from(wards[i], parents)
            for level in chain:
                out.setdefault(level, np.full(len(wards), None, dtype=object))
            for level, column in out.items():
                column[i] = chain.get(level)
        return out

    def canonical(self, code: str) -> str:
        """The code a series keeps across renames: follow single, whole predecessors back in time."""
        for _ in range(50):
            preds = self._predecessors.get(code, [])
            if len(preds) != 1 or preds[0][1] != "whole" or len(self._successors.get(preds[0][0], [])) != 1:
                return code
            code = preds[0][0]
        return code

    def wards_under(self, code: str, year: int) -> frozenset[str]:
        """Every ward of that school year whose chain of parents reaches ``code``."""
        return self.wards_under_all(year).get(code, frozenset())

    def wards_under_all(self, year: int) -> dict[str, frozenset[str]]:
        """unit -> ``wards_under(unit, year)`` for every unit above a ward that school year (one pass)."""
        def build() -> dict[str, frozenset[str]]:
            index, walked = self._year_ancestry(year)
            wards = index.to_numpy(dtype=object)
            under: dict[str, set[str]] = {}
            for units in walked.values():
                codes, distinct = pd.factorize(units, use_na_sentinel=True)
                order = np.argsort(codes, kind="stable")
                bounds = np.searchsorted(codes[order], np.arange(len(distinct) + 1))
                for k, unit in enumerate(distinct.tolist()):
                    under.setdefault(unit, set()).update(wards[order[bounds[k]:bounds[k + 1]]].tolist())
            return {unit: frozenset(ws) for unit, ws in under.items()}

        return self._yearly("wards_under", year, lambda: self._units_key(year), build)

    def units_changed(self, year: int, level: str) -> frozenset[str]:
        """Units of ``level`` whose wards that school year (``wards_under``) differ from the year before's: a
        unit some ward left or joined, or one that a ward that ended or began was under. Compared ward by ward
        on the chains, without building any unit's set of wards."""
        return self._kept("units_changed", (year, level), lambda: self._moved(year, level))

    def _moved(self, year: int, level: str) -> frozenset[str]:
        (before, walk_before), (now, walk_now) = self._year_ancestry(year - 1), self._year_ancestry(year)
        if walk_before is walk_now:  # the same units both years (shared by _yearly)
            return frozenset()
        wards = before.union(now)
        parts = []
        for index, walked in ((before, walk_before), (now, walk_now)):
            unit = np.full(len(wards), None, dtype=object)
            if level in walked:
                unit[positions(wards, index)] = walked[level]
            parts.append(unit)
        moved = parts[0] != parts[1]  # elementwise on objects: None against a code counts as moved
        return frozenset(u for u in np.concatenate([parts[0][moved], parts[1][moved]]).tolist() if u is not None)

    # --- across years ---------------------------------------------------------------------------------
    @cached_property
    def _predecessors(self) -> dict[str, list[tuple[str, str]]]:
        preds: dict[str, list[tuple[str, str]]] = {}
        for unit, succ, mapping in self.successors.itertuples(index=False):
            preds.setdefault(succ, []).append((unit, mapping))
        return preds

    @cached_property
    def _successors(self) -> dict[str, list[tuple[str, str]]]:
        succs: dict[str, list[tuple[str, str]]] = {}
        for unit, succ, mapping in self.successors.itertuples(index=False):
            succs.setdefault(unit, []).append((succ, mapping))
        return succs

    def has_history(self, code: str) -> bool:
        """Was this unit formed from others (it has predecessors in the crosswalk)?"""
        return code in self._predecessors

    def current_ward_map(self, codes: set[str] | list[str]) -> dict[str, str]:
        """Historical ward -> today's ward, only where today's ward is exactly a union of whole wards in
        ``codes`` (the wards the data covers). Units split, or merged with territory we have no data for,
        are left out: their history cannot be restated in today's geography without guessing."""
        codes = set(codes)
        out: dict[str, str] = {}
        for code in codes:
            cur, ok = code, True
            for _ in range(50):
                nxt = self._successors.get(cur, [])
                if not nxt:
                    break
                if len(nxt) != 1 or nxt[0][1] != "whole":
                    ok = False
                    break
                cur = nxt[0][0]
            if ok and self._fully_covered(cur, codes):
                out[code] = cur
        return out

    def _fully_covered(self, code: str, codes: set[str], depth: int = 0) -> bool:
        preds = self._predecessors.get(code, [])
        if not preds:
            return code in codes
        if depth > 50:
            return False
        return all(m == "whole" and (p in codes or self._fully_covered(p, codes, depth + 1)) for p, m in preds)

    def same_territory(self, before: set[str], after: set[str]) -> bool:
        """Do two sets of wards (consecutive years) cover the same territory?"""
        if before == after:
            return True
        # a new unit equals the union of its predecessors when all of them went into it whole;
        # partial pieces or units from outside make the territories differ
        return self._expand(after) == self._expand(before)

    def _expand(self, codes: set[str]) -> frozenset[str]:
        out: set[str] = set()
        stack = list(codes)
        while stack:
            code = stack.pop()
            preds = self._predecessors.get(code, [])
            if preds and all(m == "whole" and len(self._successors.get(p, [])) == 1 for p, m in preds):
                stack.extend(p for p, _ in preds)
            else:
                out.add(code)
        return frozenset(out)


def _validate(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    missing = [c for c in COLUMNS[:9] if c not in frame.columns]
    if missing:
        raise DataFileError(source, f"Thiếu cột: {', '.join(missing)}.", f"Missing column(s): {', '.join(missing)}.",
                            column=missing[0], code="crosswalk_columns")
    frame = frame.copy()
    for col in frame.columns:
        frame[col] = frame[col].astype("string").str.strip().replace("", pd.NA)
    frame["unit_code"] = frame["unit_code"].str.upper()
    frame["successor_code"] = frame["successor_code"].str.upper()
    frame["parent_code"] = frame["parent_code"].str.upper()
    for col in ("valid_from", "valid_to"):
        parsed = pd.to_datetime(frame[col], format="%Y-%m-%d", errors="coerce")
        bad = frame[col].notna() & parsed.isna()
        if bad.any():
            i = int(bad.idxmax())
            raise DataFileError(source, f"Ngày không hợp lệ (cần YYYY-MM-DD): '{frame.at[i, col]}'.",
                                f"Invalid date (need YYYY-MM-DD): '{frame.at[i, col]}'.", row=i + 2, column=col,
                                code="crosswalk_date")
        frame[col] = parsed
    bad_level = frame["level"].notna() & ~frame["level"].isin(LEVELS)
    if frame["unit_code"].isna().any() or frame["unit_name"].isna().any() or bad_level.any() or frame["level"].isna().any():
        i = int((frame["unit_code"].isna() | frame["unit_name"].isna() | bad_level | frame["level"].isna()).idxmax())
        raise DataFileError(source, f"Dòng thiếu mã/tên hoặc cấp không hợp lệ (cấp: {', '.join(LEVELS)}).",
                            f"Row without code/name or with an invalid level (levels: {', '.join(LEVELS)}).",
                            row=i + 2, code="crosswalk_row")
    bad_map = frame["successor_code"].notna() & ~frame["mapping"].isin(["whole", "partial"])
    if bad_map.any():
        i = int(bad_map.idxmax())
        raise DataFileError(source, "Cột mapping phải là 'whole' hoặc 'partial'.",
                            "Column mapping must be 'whole' or 'partial'.", row=i + 2, column="mapping",
                            code="crosswalk_mapping")
    known = set(frame["unit_code"])
    for col in ("successor_code", "parent_code"):
        unknown = frame[col].notna() & ~frame[col].isin(known)
        if unknown.any():
            i = int(unknown.idxmax())
            raise DataFileError(source, f"Mã '{frame.at[i, col]}' không có trong danh mục.",
                                f"Code '{frame.at[i, col]}' is not in the list of units.", row=i + 2, column=col,
                                code="crosswalk_reference")
    return frame
