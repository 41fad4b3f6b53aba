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
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path

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
        v = self.versions
        mask = (v["valid_from"].isna() | (v["valid_from"] <= pd.Timestamp(day))) & (
            v["valid_to"].isna() | (v["valid_to"] >= pd.Timestamp(day))
        )
        if level is not None:
            mask &= v["level"] == level
        return v[mask]

    def wards_of_year(self, year: int) -> pd.DataFrame:
        """Wards valid at the start of the school year, and those created during it (named either way)."""
        cache = self.__dict__.setdefault("_wards_of_year", {})
        if year not in cache:
            cache[year] = self.units_during(year, "ward")
        return cache[year]

    def units_during(self, year: int, level: str | None = None) -> pd.DataFrame:
        """Units (of one level, or all) valid at the start of the school year, and those created during it."""
        start = self.valid_at(school_year_start(year), level)
        end = self.valid_at(school_year_end(year), level)
        return pd.concat([start, end[_not_in(end["unit_code"], start["unit_code"])]], ignore_index=True)

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
        cache = self.__dict__.setdefault("_ward_cache", {})
        if year not in cache:
            wards = self.wards_of_year(year)
            by_name = wards.groupby("name_key")["unit_code"].agg(lambda s: tuple(dict.fromkeys(s)))
            cache[year] = {"name": by_name.to_dict(), "code": {c: (c,) for c in wards["unit_code"]}}
        return cache[year]

    @cached_property
    def _latest_names(self) -> dict[str, str]:
        """code -> the name of its last version (in file order)."""
        last = self.versions.drop_duplicates("unit_code", keep="last")
        return dict(zip(last["unit_code"].tolist(), last["unit_name"].tolist()))

    def names_at(self, year: int) -> dict[str, str]:
        """code -> ``name_of(code, year)`` for every unit: the first version (in file order) valid at the start
        of the school year, else the latest name. One vectorised pass per year, then dictionary lookups."""
        cache = self.__dict__.setdefault("_names_at", {})
        if year not in cache:
            valid = self.valid_at(school_year_start(year)).drop_duplicates("unit_code", keep="first")
            cache[year] = {**self._latest_names, **dict(zip(valid["unit_code"].tolist(), valid["unit_name"].tolist()))}
        return cache[year]

    def name_of(self, code: str, year: int | None = None) -> str:
        """The unit's name in that school year (its latest name when no year is given)."""
        names = self._latest_names if year is None else self.names_at(year)
        return names.get(code, code)

    # --- hierarchy ------------------------------------------------------------------------------------------
    @cached_property
    def level_of(self) -> dict[str, str]:
        return dict(zip(self.versions["unit_code"], self.versions["level"]))

    def parents_at(self, year: int) -> dict[str, str]:
        """unit -> parent for the units of a school year (valid at its start, or created during it)."""
        cache = self.__dict__.setdefault("_parents_at", {})
        if year not in cache:
            both = self.units_during(year)
            both = both[both["parent_code"].notna()]
            cache[year] = dict(zip(both["unit_code"].tolist(), both["parent_code"].tolist()))
        return dict(cache[year])

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

    def chains_at(self, year: int, wards) -> dict[str, dict[str, str]]:
        """ward -> ``ancestors_from(ward)`` for many wards of one school year. The wards under one parent
        share the chain above it, so it is walked once per parent (a country has 10,000 wards and 700
        districts); a ward is walked on its own only where the chain above its parent runs back through it."""
        parents = self.parents_at(year)
        shared: dict = {}
        out: dict[str, dict[str, str]] = {}
        for ward in wards:
            parent = parents.get(ward)
            if parent not in shared:
                path = [parent, *self._above(parent, parents)] if parent else []
                shared[parent] = ({self.level_of.get(unit, "?"): unit for unit in path}, set(path))
            chain, path = shared[parent]
            out[ward] = self.ancestors_from(ward, parents) if ward in path else chain
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
        cache = self.__dict__.setdefault("_wards_under", {})
        if year not in cache:
            under: dict[str, set[str]] = {}
            wards = dict.fromkeys(self.wards_of_year(year)["unit_code"].tolist())
            for ward, chain in self.chains_at(year, wards).items():
                for unit in set(chain.values()):
                    under.setdefault(unit, set()).add(ward)
            cache[year] = {unit: frozenset(ws) for unit, ws in under.items()}
        return cache[year]

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


def _not_in(values: pd.Series, others: pd.Series) -> np.ndarray:
    """``~values.isin(others)`` through a Python set (Arrow's ``isin`` converts ``others`` one by one)."""
    seen = set(others.dropna().tolist())
    return np.fromiter((v is pd.NA or v not in seen for v in values.tolist()), dtype=bool, count=len(values))


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
