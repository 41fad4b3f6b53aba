"""Wards, their changes over time and the hierarchy above them, from the crosswalk file.

``data/raw/don_vi_hanh_chinh.csv``: one row per unit version (a code keeps its territory; a new name or type
is a new version) and, where a unit ended, one row per successor, ``mapping`` whole or partial. From it: the
ward a workbook's name means that school year, the units above it, the historical wards that add up to a ward
of today, and whether two years' wards cover the same territory (if not: a series break). Nothing here is
specific to Bến Cát: a province or the whole country is the same file with more rows.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from analysis import config
from analysis.errors import DataFileError

COLUMNS = ["unit_code", "unit_name", "unit_type", "level", "parent_code", "valid_from", "valid_to",
           "successor_code", "mapping", "source", "note"]
LEVELS = ("ward", "district", "province", "country")
_PREFIX = re.compile(r"^(phuong|xa|thi tran|tt|p|x)\s+(?=\S)")
MAX_DEPTH = 50  # a chain of parents or successors longer than this is a broken crosswalk


def school_year_start(year: int) -> date:
    """The date a reporting year's school year starts (2025 -> 5 Sept 2024)."""
    return date(year - 1, 9, 5)


def name_key(name: object) -> str:
    """Ward name key without its type prefix: 'P. Mỹ Phước', 'Phường Mỹ Phước', 'my phuoc' -> 'myphuoc'."""
    text = unicodedata.normalize("NFD", str(name)).replace("đ", "d").replace("Đ", "D")
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    words = re.sub(r"[^0-9a-z]+", " ", text).strip()
    return _PREFIX.sub("", words).replace(" ", "")


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
    """The crosswalk's units and how they changed; answers per school year are kept (it never changes)."""

    def __init__(self, frame: pd.DataFrame, source: str = config.CROSSWALK_FILE):
        frame = _validate(frame, source)
        self.versions = (frame.drop(columns=["successor_code", "mapping"])
                         .drop_duplicates(["unit_code", "valid_from"]).reset_index(drop=True))
        self.versions["name_key"] = self.versions["unit_name"].map(name_key)
        last = self.versions.drop_duplicates("unit_code", keep="last")
        self._latest_names = dict(zip(last["unit_code"], last["unit_name"]))  # code -> its last version's name
        self.level_of = dict(zip(self.versions["unit_code"], self.versions["level"]))
        succ = frame[frame["successor_code"].notna()]
        self.successors = succ[["unit_code", "successor_code", "mapping"]].drop_duplicates().reset_index(drop=True)
        # unit -> [(unit it was formed from, mapping)] and unit -> [(unit it went into, mapping)]
        self._predecessors: dict[str, list[tuple[str, str]]] = {}
        self._successors: dict[str, list[tuple[str, str]]] = {}
        for unit, successor, mapping in self.successors.itertuples(index=False):
            self._predecessors.setdefault(successor, []).append((unit, mapping))
            self._successors.setdefault(unit, []).append((successor, mapping))
        self._cache: dict[tuple, object] = {}

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

    def _kept(self, key: tuple, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    # --- one school year ------------------------------------------------------------------------------
    def valid_at(self, day: date, level: str | None = None) -> pd.DataFrame:
        """Unit versions valid on ``day`` (from and to inclusive, open ends open), in file order."""
        v, t = self.versions, pd.Timestamp(day)
        mask = (v["valid_from"].isna() | (v["valid_from"] <= t)) & (v["valid_to"].isna() | (v["valid_to"] >= t))
        if level is not None:
            mask &= v["level"] == level
        return v[mask]

    def units_during(self, year: int, level: str | None = None) -> pd.DataFrame:
        """Units (of one level, or all) valid at the start of the school year, and those created during it."""
        def build() -> pd.DataFrame:
            start = self.valid_at(school_year_start(year), level)
            end = self.valid_at(date(year, 5, 31), level)  # the school year's last day
            return pd.concat([start, end[~end["unit_code"].isin(start["unit_code"])]]).reset_index(drop=True)

        return self._kept(("during", year, level), build)

    def wards_of_year(self, year: int) -> pd.DataFrame:
        """Wards valid at the start of the school year, and those created during it (named either way)."""
        return self.units_during(year, "ward")

    def match_ward(self, text: object, year: int, *, by_code: bool = False) -> WardMatch:
        """Which ward a name (or code) written in that school year's workbook means."""
        def build() -> dict[str, dict[str, tuple[str, ...]]]:
            wards = self.wards_of_year(year)
            by_name = wards.groupby("name_key")["unit_code"].agg(lambda s: tuple(dict.fromkeys(s)))
            return {"name": by_name.to_dict(), "code": {c: (c,) for c in wards["unit_code"]}}

        key = str(text).strip().upper() if by_code else name_key(text)
        hits = self._kept(("ward index", year), build)["code" if by_code else "name"].get(key, ())
        if len(hits) == 1:
            return WardMatch(hits[0], self.name_of(hits[0], year), "ok")
        if len(hits) > 1:
            return WardMatch(None, None, "ambiguous", tuple(hits))
        any_year = self.versions[self.versions["level"] == "ward"]
        other = any_year[(any_year["unit_code"] if by_code else any_year["name_key"]) == key]
        if len(other):
            return WardMatch(None, None, "outside_year", tuple(other["unit_code"].unique()))
        return WardMatch(None, None, "unknown")

    def names_at(self, year: int) -> dict[str, str]:
        """code -> its name that school year: its first version valid at the year's start, else its latest."""
        def build() -> dict[str, str]:
            valid = self.valid_at(school_year_start(year)).drop_duplicates("unit_code")
            return {**self._latest_names, **dict(zip(valid["unit_code"], valid["unit_name"]))}

        return self._kept(("names", year), build)

    def name_of(self, code: str, year: int | None = None) -> str:
        """The unit's name in that school year (its latest name when no year is given)."""
        return (self._latest_names if year is None else self.names_at(year)).get(code, code)

    # --- hierarchy ------------------------------------------------------------------------------------------
    def parents_at(self, year: int) -> dict[str, str]:
        """unit -> parent for the units of a school year (valid at its start, or created during it)."""
        def build() -> dict[str, str]:
            units = self.units_during(year)
            units = units[units["parent_code"].notna()]
            return dict(zip(units["unit_code"], units["parent_code"]))

        return self._kept(("parents", year), build)

    def ancestors_from(self, code: str, parents: dict[str, str]) -> dict[str, str]:
        """level -> code of every unit above ``code`` (a chain that loops back stops where it would repeat;
        two units of one level: the higher one)."""
        out: dict[str, str] = {}
        seen, cur = {code}, parents.get(code)
        while cur and cur not in seen and len(seen) <= MAX_DEPTH:
            seen.add(cur)
            out[self.level_of.get(cur, "?")] = cur
            cur = parents.get(cur)
        return out

    def ancestry(self, year: int, wards) -> pd.DataFrame:
        """One row per ward (the index, in the given order) and one column per level above it that any of
        them has, holding the code of the unit of that level above the ward that school year (None: none)."""
        parents = self.parents_at(year)
        rows = [self.ancestors_from(w, parents) for w in wards]
        return pd.DataFrame(rows, index=pd.Index(list(wards), dtype=object), dtype=object)

    def wards_under(self, code: str, year: int) -> frozenset[str]:
        """Every ward of that school year whose chain of parents reaches ``code``."""
        def build() -> dict[str, frozenset[str]]:
            wards = self.wards_of_year(year)["unit_code"].drop_duplicates()
            above = self.ancestry(year, wards).stack().dropna()  # (ward, level) -> unit above it
            ward_of = pd.Series(above.index.get_level_values(0), index=above.to_numpy())
            return {unit: frozenset(ws) for unit, ws in ward_of.groupby(level=0)}

        return self._kept(("wards under", year), build).get(code, frozenset())

    def canonical(self, code: str) -> str:
        """The code a series keeps across renames: follow single, whole predecessors back in time."""
        for _ in range(MAX_DEPTH):
            preds = self._predecessors.get(code, [])
            if len(preds) != 1 or preds[0][1] != "whole" or len(self._successors.get(preds[0][0], [])) != 1:
                return code
            code = preds[0][0]
        return code

    # --- across years ---------------------------------------------------------------------------------
    def origins(self, code: str, stop: set[str] | frozenset[str] = frozenset()) -> set[str]:
        """The units ``code`` was formed from, followed back through the successor rows (whole or partial)
        until a unit of ``stop`` or one without predecessors: a unit that was not formed from others is its own."""
        out, todo, seen = set(), [code], set()
        while todo:
            unit = todo.pop()
            preds = [p for p, _ in self._predecessors.get(unit, [])] if unit not in stop else []
            if preds and unit not in seen:
                seen.add(unit)
                todo += preds
            else:
                out.add(unit)
        return out

    def current_ward_map(self, codes) -> dict[str, str]:
        """Historical ward -> today's ward, when today's was formed from whole wards of ``codes`` (the data's) only:
        a split, or a merger with territory without data, cannot be restated in today's without guessing."""
        codes = set(codes)
        out: dict[str, str] = {}
        for code in codes:
            cur, ok = code, True
            for _ in range(MAX_DEPTH):
                nxt = self._successors.get(cur, [])
                if not nxt:
                    break
                if len(nxt) != 1 or nxt[0][1] != "whole":
                    ok = False
                    break
                cur = nxt[0][0]
            if ok and cur in self._predecessors and self._fully_covered(cur, codes):
                out[code] = cur
        return out

    def _fully_covered(self, code: str, codes: set[str], depth: int = 0) -> bool:
        preds = self._predecessors.get(code, [])
        if not preds:
            return code in codes
        if depth > MAX_DEPTH:
            return False
        return all(m == "whole" and (p in codes or self._fully_covered(p, codes, depth + 1)) for p, m in preds)

    def same_territory(self, before: set[str], after: set[str]) -> bool:
        """Do two sets of wards (consecutive years) cover the same territory? A new unit is the union of its
        predecessors if all went into it whole; a partial piece or a unit from outside makes them differ."""
        return before == after or self._expand(after) == self._expand(before)

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


# --- the geography of a dataset ----------------------------------------------------------------------------

@dataclass
class DataGeography:
    """Where a dataset's wards sit each year, and the units its indicators report on. ``territory_level``: the
    lowest level with one unit holding every ward of the data each year (the plan's territory); ``levels``: the
    levels reported above the ward, territory first; ``hierarchy``: per (year, ward) of the data, its unit of
    each level; ``current``: historical ward -> today's ward, where today's ward changed and the data covers its
    former wards whole (an unchanged ward's series is its ``ward`` series already)."""

    crosswalk: Crosswalk
    hierarchy: pd.DataFrame
    territory_level: str
    levels: list[str]
    current: dict[str, str] = field(default_factory=dict)
    restated: dict[int, set[tuple[str, str]]] = field(default_factory=dict)  # see restate()

    @property
    def territory(self) -> pd.DataFrame:
        """year -> the territory's unit and its series code (kept across renames: BEN_CAT_KH continues BEN_CAT)."""
        t = self.hierarchy.drop_duplicates("year")[["year", self.territory_level]]
        return t.rename(columns={self.territory_level: "unit"}).assign(
            code=lambda f: f["unit"].map(self.crosswalk.canonical))

    def codes(self, level: str, year: pd.Series, ward: pd.Series, former: pd.Series | None = None) -> pd.Series:
        """Each row's unit of ``level`` (NA: none). The territory holds every row of its year, even without a
        ward, except, with ``former`` (each row's former unit), the rows outside a restated year's (``restate``)."""
        if level == "ward":
            return ward
        if level == "ward_current":
            return ward.map(self.current)
        if level == self.territory_level:
            code = year.map(self.territory.set_index("year")["code"])
            if former is not None and self.restated:
                pairs = list(zip(year, ward.fillna(""), former.fillna("")))
                inside = [y not in self.restated or (w, f) in self.restated[y] for y, w, f in pairs]
                code = code.where(pd.Series(inside, index=year.index))
            return code
        keys = pd.MultiIndex.from_arrays([year, ward])
        found = self.hierarchy.set_index(["year", "ward"])[level].reindex(keys)
        return pd.Series(found.to_numpy(), index=year.index)

    def names(self, level: str, year: pd.Series, code: pd.Series) -> pd.Series:
        """geo_name of each (year, code), as named that school year (today's wards: their latest name); wards
        without their type prefix."""
        cw = self.crosswalk
        if level == "ward_current":
            return code.map(lambda c: short_name(cw.name_of(c)))
        if level == self.territory_level:
            code = year.map(self.territory.set_index("year")["unit"])
        named = [cw.names_at(y).get(c, c) for y, c in zip(year, code)]
        return pd.Series([short_name(n) for n in named] if level == "ward" else named, index=year.index, dtype=object)

    def segments(self, level: str) -> pd.DataFrame:
        """For each unit of a level above the ward and each year it has data: ``series_break`` (its wards
        cover another territory than the year before) and ``start`` (the first year of its current territory)."""
        cw = self.crosswalk
        if level == self.territory_level:
            units = self.territory
        else:
            units = self.hierarchy[["year", level]].dropna().drop_duplicates().rename(columns={level: "code"})
            units = units.assign(unit=units["code"])
        rows = []
        for code, seq in units.sort_values("year").groupby("code", sort=False):
            start, before = None, None
            for year, unit in zip(seq["year"], seq["unit"]):
                restated = level == self.territory_level and year in self.restated
                broke = before is not None and not restated and not cw.same_territory(
                    cw.wards_under(before[1], before[0]), cw.wards_under(unit, year))
                start = year if start is None or broke else start
                rows.append((code, year, broke, start))
                before = (year, unit)
        return pd.DataFrame(rows, columns=["code", "year", "series_break", "start"])

    def restate(self, survey: pd.DataFrame) -> None:
        """Where the territory's wards changed (the 1 July 2025 reform) and the survey (``year, ma_xa_phuong,
        ma_don_vi_cu``) says which former unit each row of a new ward reaching outside the year before's counts,
        the territory is restated that year (``restated``: year -> its (ward, former unit or '') inside) and its
        series goes on. A ward reaching both inside and outside, without a former unit: a break."""
        t = self.territory.sort_values("year")
        years, units, cw = t["year"].tolist(), t["unit"].tolist(), self.crosswalk
        for before_year, before_unit, year, unit in zip(years, units, years[1:], units[1:]):
            old = cw.wards_under(before_unit, before_year)
            if cw.same_territory(old, cw.wards_under(unit, year)):
                continue
            wards_before = set(cw.wards_of_year(before_year)["unit_code"])
            rows = survey[survey["year"] == year]
            inside, ok = set(), len(rows) > 0
            for ward, former in set(zip(rows["ma_xa_phuong"].fillna(""), rows["ma_don_vi_cu"].fillna(""))):
                found = cw.origins(former or ward, stop=wards_before)
                if found <= old:
                    inside.add((ward, former))
                elif found & old:  # part inside, part outside, and no former unit to tell which
                    ok = False
            if ok:
                self.restated[year] = inside


def data_geography(wards_by_year: dict[int, list[str]], crosswalk: Crosswalk,
                   survey: pd.DataFrame | None = None) -> DataGeography:
    """Place the data's wards (year -> ward codes) in the crosswalk's hierarchy and find their territory; with
    the survey's rows, restate it where a reform changed it (``DataGeography.restate``)."""
    parts = [crosswalk.ancestry(year, wards).rename_axis("ward").reset_index().assign(year=year)
             for year, wards in sorted(wards_by_year.items()) if len(wards)]
    hierarchy = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["year", "ward"])
    above = [lv for lv in ("district", "province", "country") if lv in hierarchy]
    territory = next((lv for lv in above if len(hierarchy) and hierarchy[lv].notna().all()
                      and (hierarchy.groupby("year")[lv].nunique() == 1).all()), "ward")
    levels = [] if territory == "ward" else above[: above.index(territory) + 1][::-1]
    geo = DataGeography(crosswalk, hierarchy.reindex(columns=["year", "ward", *levels]), territory, levels,
                        crosswalk.current_ward_map({w for ws in wards_by_year.values() for w in ws}))
    if survey is not None and levels and "ma_don_vi_cu" in survey:
        geo.restate(survey)
    return geo


def _validate(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    missing = [c for c in COLUMNS[:9] if c not in frame.columns]
    if missing:
        raise DataFileError(source, f"Thiếu cột: {', '.join(missing)}.", f"Missing column(s): {', '.join(missing)}.",
                            column=missing[0], code="crosswalk_columns")
    frame = frame.copy()
    for col in frame.columns:
        frame[col] = frame[col].astype("string").str.strip().replace("", pd.NA)
    for col in ("unit_code", "successor_code", "parent_code"):
        frame[col] = frame[col].str.upper()
    for col in ("valid_from", "valid_to"):
        parsed = pd.to_datetime(frame[col], format="%Y-%m-%d", errors="coerce")
        bad = frame[col].notna() & parsed.isna()
        if bad.any():
            i = int(bad.idxmax())
            raise DataFileError(source, f"Ngày không hợp lệ (cần YYYY-MM-DD): '{frame.at[i, col]}'.",
                                f"Invalid date (need YYYY-MM-DD): '{frame.at[i, col]}'.", row=i + 2, column=col,
                                code="crosswalk_date")
        frame[col] = parsed
    bad = frame["unit_code"].isna() | frame["unit_name"].isna() | ~frame["level"].isin(LEVELS).fillna(False)
    if bad.any():
        raise DataFileError(source, f"Dòng thiếu mã/tên hoặc cấp không hợp lệ (cấp: {', '.join(LEVELS)}).",
                            f"Row without code/name or with an invalid level (levels: {', '.join(LEVELS)}).",
                            row=int(bad.idxmax()) + 2, code="crosswalk_row")
    bad_map = frame["successor_code"].notna() & ~frame["mapping"].isin(["whole", "partial"]).fillna(False)
    if bad_map.any():
        raise DataFileError(source, "Cột mapping phải là 'whole' hoặc 'partial'.",
                            "Column mapping must be 'whole' or 'partial'.", row=int(bad_map.idxmax()) + 2,
                            column="mapping", code="crosswalk_mapping")
    known = set(frame["unit_code"])
    for col in ("successor_code", "parent_code"):
        unknown = frame[col].notna() & ~frame[col].isin(known)
        if unknown.any():
            i = int(unknown.idxmax())
            raise DataFileError(source, f"Mã '{frame.at[i, col]}' không có trong danh mục.",
                                f"Code '{frame.at[i, col]}' is not in the list of units.", row=i + 2, column=col,
                                code="crosswalk_reference")
    return frame
