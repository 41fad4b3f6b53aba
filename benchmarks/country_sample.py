"""A country-sized synthetic dataset in the raw template, for the scale benchmark (``bench_scale.py``).

    python benchmarks/country_sample.py [--out DIR] [--seed N] [--provinces N] [--districts N] [--wards N]
                                        [--institutions N] [--years N] [--last-year YYYY]

By default: 63 provinces, 700 districts, 10,600 wards, 45,000 institutions, 11 school years, written to
``benchmarks/_data/country`` (outside git). Flow as the Bến Cát sample (``analysis.sample``), which it leaves
alone: geography (``country_geography``: country -> provinces -> districts -> wards, a few whole ward
mergers mid-period; names repeat across provinces, so the workbooks carry the ward code column), a roster
drawn from counts instead of a story's explicit list (``_country_roster``), then each school year's four
template tables (``simulate_country_year``), drawn with numpy, vectorised over units and sexes and looped
only over years. The data are valid (no injected problems): this dataset is for speed, the Bến Cát sample
for defects. The workbooks are written by openpyxl's write-only mode (rows streamed to the file).

Importable too (``generate_country``, ``CountrySize``: the benchmark and ``tests/test_scale.py`` use it). It
uses the package (the template, the config, the sample's random streams); the package never imports it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from analysis import config  # noqa: E402
from analysis import template as T  # noqa: E402
from analysis.atomic import write_file  # noqa: E402
from analysis.formats import small_csv_writer  # noqa: E402
from analysis.sample import (DEFAULT_SEED, GIRLS, SHEET_TITLES, SYNTHETIC_EN, SYNTHETIC_VI, expit,  # noqa: E402
                             logit, rng_for, sex_terms)

DEFAULT_OUT = HERE / "_data" / "country"


@dataclass(frozen=True)
class CountrySize:
    """How big the synthetic country is. Defaults: Viet Nam before July 2025 (63 provinces, ~700
    districts, ~10,600 wards and communes), ~45,000 preschool/primary/lower-secondary institutions."""

    provinces: int = 63
    districts: int = 700
    wards: int = 10_600
    institutions: int = 45_000
    years: int = 11
    last_year: int = 2026
    merge_share: float = 0.02  # share of wards merged in pairs (whole, same district) mid-period
    text_numbers: float = 0.01  # share of counts >= 1000 written as text with '.' thousands ("1.234")

    def __post_init__(self) -> None:
        if not (1 <= self.provinces <= self.districts <= self.wards) or self.institutions < 1 or self.years < 1:
            raise ValueError("need 1 <= provinces <= districts <= wards, institutions >= 1, years >= 1")
        if self.provinces > 99 or self.districts / self.provinces > 999 or self.wards / self.districts > 999:
            raise ValueError("at most 99 provinces, 999 districts per province, 999 wards per district")

    @property
    def year_list(self) -> list[int]:
        return list(range(self.last_year - self.years + 1, self.last_year + 1))

    @property
    def merge_year(self) -> int:
        """First reporting year with the merged wards (merge on 1 July before that school year)."""
        first = self.year_list[0]
        return first + (self.years // 2 if self.years > 1 else 0)


COUNTRY_CODE = "VN"
COUNTRY_NAME = "Việt Nam (giả lập / synthetic)"
COUNTRY_SOURCE = "Dữ liệu giả lập, không phải danh mục thật / synthetic, not the real list of units"
_SYLLABLES = (
    "An", "Bình", "Phú", "Hòa", "Tân", "Long", "Thạnh", "Mỹ", "Phước", "Đông", "Tây", "Nam", "Bắc", "Hưng",
    "Thới", "Lợi", "Định", "Vĩnh", "Thuận", "Hiệp", "Thành", "Trung", "Sơn", "Hải", "Lạc", "Quang", "Minh",
    "Xuân", "Thịnh", "Khánh", "Lộc", "Phong", "Đức", "Nghĩa", "Kim", "Ngọc", "Thanh", "Hồng", "Cát", "Hà",
)
# (template type code, share of institutions, ownership shares cong_lap / tu_thuc / dan_lap, size of level 1, 2)
_COUNTRY_TYPES = (
    ("mam_non", 0.28, (0.78, 0.20, 0.02), 190, 0), ("mau_giao", 0.05, (0.80, 0.18, 0.02), 150, 0),
    ("nha_tre", 0.01, (0.30, 0.68, 0.02), 60, 0), ("doc_lap", 0.06, (0.0, 0.95, 0.05), 40, 0),
    ("tieu_hoc", 0.32, (0.97, 0.03, 0.0), 620, 0), ("thcs", 0.22, (0.98, 0.02, 0.0), 0, 560),
    ("th_thcs", 0.06, (0.95, 0.05, 0.0), 260, 180),
)
_TYPE_ABBR = {"mam_non": "MN", "mau_giao": "MG", "nha_tre": "NT", "doc_lap": "DL", "tieu_hoc": "TH", "thcs": "CS",
              "th_thcs": "LC"}
# national trajectory of each rate over the period (first year -> last year), on the probability scale
_COUNTRY_RATES = {
    "on_track": (0.955, 0.985), "kindergarten": (0.965, 0.993), "primary_done": (0.950, 0.985),
    "lower_sec_done": (0.820, 0.900), "disabled_access": (0.600, 0.850), "drop_tieu_hoc": (0.0022, 0.0011),
    "drop_thcs": (0.0130, 0.0060), "complete_tieu_hoc": (0.985, 0.996), "complete_thcs": (0.900, 0.950),
    "cong_trinh_ve_sinh": (0.850, 0.985), "ho_tro_tam_ly": (0.300, 0.850), "csvc_khuyet_tat": (0.300, 0.400),
}


def _rate_path(name: str, years: list[int]) -> np.ndarray:
    a, b = _COUNTRY_RATES[name]
    t = np.linspace(0.0, 1.0, len(years)) if len(years) > 1 else np.ones(1)
    return expit(logit(a) + (logit(b) - logit(a)) * t)


def _spread(rng: np.random.Generator, total: int, bins: int, sigma: float = 0.5) -> np.ndarray:
    """``total`` items over ``bins`` bins, at least one each, uneven sizes (lognormal weights)."""
    w = rng.lognormal(0.0, sigma, bins)
    return 1 + rng.multinomial(total - bins, w / w.sum())


def _two_syllable_names(rng: np.random.Generator, n: int, unique: bool) -> list[str]:
    pairs = [f"{a} {b}" for a in _SYLLABLES for b in _SYLLABLES if a != b]
    if unique and n <= len(pairs):
        pick = rng.choice(len(pairs), size=n, replace=False)
    else:
        pick = rng.integers(len(pairs), size=n)
    return [pairs[k] for k in pick]


@dataclass
class CountryGeography:
    crosswalk: pd.DataFrame  # the don_vi_hanh_chinh.csv rows (strings, '' for blank)
    wards: pd.DataFrame      # one row per original ward: code, name, district, province, pop, merged_into
    merged: pd.DataFrame     # one row per merged ward: code, name, district, province, pop


def country_geography(size: CountrySize, seed: int = DEFAULT_SEED) -> CountryGeography:
    """Country -> provinces -> districts -> wards, with a few whole merges of two wards in a district."""
    rng = rng_for(seed, "country", "geography")
    n_dist = _spread(rng, size.districts, size.provinces)
    n_ward = _spread(rng, size.wards, size.districts, 0.6)
    prov_codes = [f"P{k:02d}" for k in range(1, size.provinces + 1)]
    prov_names = [f"Tỉnh {n}" for n in _two_syllable_names(rng, size.provinces, unique=True)]
    dist_prov = np.repeat(np.arange(size.provinces), n_dist)
    dist_seq = np.concatenate([np.arange(1, k + 1) for k in n_dist])
    dist_codes = [f"{prov_codes[p]}D{s:03d}" for p, s in zip(dist_prov, dist_seq)]
    dist_kind = rng.choice(["Huyện", "Quận", "Thị xã", "Thành phố"], size=size.districts, p=[0.70, 0.07, 0.09, 0.14])
    dist_names = [f"{k} {n}" for k, n in zip(dist_kind, _two_syllable_names(rng, size.districts, unique=False))]
    ward_dist = np.repeat(np.arange(size.districts), n_ward)
    ward_seq = np.concatenate([np.arange(1, k + 1) for k in n_ward])
    urban = np.isin(dist_kind, ["Quận", "Thị xã", "Thành phố"])[ward_dist]
    numbered = urban & (rng.random(size.wards) < 0.35)  # "Phường 1", "Phường 2"… repeat across the country
    kind = np.where(urban, "Phường", np.where(rng.random(size.wards) < 0.05, "Thị trấn", "Xã"))
    plain = _two_syllable_names(rng, size.wards, unique=False)
    ward_names = [f"Phường {s}" if num else f"{k} {n}" for num, s, k, n in zip(numbered, ward_seq, kind, plain)]
    wards = pd.DataFrame({
        "code": [f"{dist_codes[d]}X{s:03d}" for d, s in zip(ward_dist, ward_seq)], "name": ward_names,
        "type": np.char.lower(kind.astype(str)), "district": ward_dist, "province": dist_prov[ward_dist],
        "pop": rng.lognormal(np.log(9000), 0.7, size.wards).round(), "merged_into": "",
    })
    # whole merges: pairs of consecutive wards of one district, effective 1 July before merge_year
    eligible = np.flatnonzero((ward_seq % 2 == 1) & (np.r_[ward_dist[1:], -1] == ward_dist))
    n_pairs = min(len(eligible), max(int(round(size.merge_share * size.wards / 2)), int(size.merge_share > 0)))
    firsts = np.sort(rng.choice(eligible, size=n_pairs, replace=False)) if n_pairs else np.array([], int)
    merged_rows = []
    for i in firsts:
        d = int(ward_dist[i])
        code = f"{dist_codes[d]}M{int(ward_seq[i]):03d}"
        merged_rows.append({"code": code, "name": wards.at[i, "name"], "type": wards.at[i, "type"], "district": d,
                            "province": int(dist_prov[d]), "pop": wards.at[i, "pop"] + wards.at[i + 1, "pop"]})
        wards.loc[[i, i + 1], "merged_into"] = code
    merged = pd.DataFrame(merged_rows, columns=["code", "name", "type", "district", "province", "pop"])

    until = f"{size.merge_year - 1}-06-30"
    start = f"{size.merge_year - 1}-07-01"
    blank = {"valid_from": "", "valid_to": "", "successor_code": "", "mapping": "", "source": COUNTRY_SOURCE,
             "note": ""}
    rows = [{"unit_code": COUNTRY_CODE, "unit_name": COUNTRY_NAME, "unit_type": "quốc gia", "level": "country",
             "parent_code": "", **blank}]
    rows += [{"unit_code": c, "unit_name": n, "unit_type": "tỉnh", "level": "province", "parent_code": COUNTRY_CODE,
              **blank} for c, n in zip(prov_codes, prov_names)]
    rows += [{"unit_code": c, "unit_name": n, "unit_type": k.lower(), "level": "district",
              "parent_code": prov_codes[p], **blank} for c, n, k, p in zip(dist_codes, dist_names, dist_kind, dist_prov)]
    for w in wards.itertuples(index=False):
        row = {"unit_code": w.code, "unit_name": w.name, "unit_type": w.type, "level": "ward",
               "parent_code": dist_codes[w.district], **blank}
        if w.merged_into:
            row.update(valid_to=until, successor_code=w.merged_into, mapping="whole",
                       note="Sáp nhập giả lập / synthetic merger")
        rows.append(row)
    rows += [{"unit_code": m.code, "unit_name": m.name, "unit_type": m.type, "level": "ward",
              "parent_code": dist_codes[m.district], **blank, "valid_from": start,
              "note": "Sáp nhập giả lập / synthetic merger"} for m in merged.itertuples(index=False)]
    crosswalk = pd.DataFrame(rows)[["unit_code", "unit_name", "unit_type", "level", "parent_code", "valid_from",
                                    "valid_to", "successor_code", "mapping", "source", "note"]]
    return CountryGeography(crosswalk, wards, merged)


def _country_roster(size: CountrySize, geo: CountryGeography, seed: int) -> pd.DataFrame:
    """Institutions: type, ownership, ward, size, first and last year (a few open or close in the period)."""
    rng = rng_for(seed, "country", "roster")
    n, wards, years = size.institutions, geo.wards, size.year_list
    weights = wards["pop"].to_numpy() / wards["pop"].sum()
    ward = np.r_[rng.permutation(len(wards))[: min(n, len(wards))],
                 rng.choice(len(wards), size=max(n - len(wards), 0), p=weights)]
    shares = np.array([t[1] for t in _COUNTRY_TYPES])
    t_idx = rng.choice(len(_COUNTRY_TYPES), size=n, p=shares / shares.sum())
    own_codes = np.array(["cong_lap", "tu_thuc", "dan_lap"])
    own = np.empty(n, dtype=object)
    for k, (_, _, own_p, _, _) in enumerate(_COUNTRY_TYPES):
        at = t_idx == k
        own[at] = own_codes[rng.choice(3, size=int(at.sum()), p=np.array(own_p) / sum(own_p))]
    types = np.array([t[0] for t in _COUNTRY_TYPES], dtype=object)[t_idx]
    pop_rel = (wards["pop"].to_numpy() / wards["pop"].median())[ward] ** 0.3
    size1 = np.array([t[3] for t in _COUNTRY_TYPES])[t_idx] * pop_rel * rng.lognormal(0, 0.35, n)
    size2 = np.array([t[4] for t in _COUNTRY_TYPES])[t_idx] * pop_rel * rng.lognormal(0, 0.35, n)
    first = np.full(n, years[0])
    last = np.full(n, years[-1])
    if len(years) > 1:
        opens = rng.random(n) < 0.05
        first[opens] = rng.choice(years[1:], size=int(opens.sum()))
        closes = ~opens & (rng.random(n) < 0.02)
        last[closes] = rng.choice(years[:-1], size=int(closes.sum()))
    prov = wards["province"].to_numpy()[ward]
    codes = [f"P{p + 1:02d}{_TYPE_ABBR[t]}{i:06d}" for i, (p, t) in enumerate(zip(prov, types), 1)]
    label = {c.code: c.vi for c in T.SCHOOL_TYPES}
    names = [f"Trường {label[t] if t != 'doc_lap' else 'Nhóm trẻ'} {w}" for t, w in
             zip(types, _two_syllable_names(rng, n, unique=False))]
    return pd.DataFrame({"code": codes, "name": names, "type": types, "own": own, "ward": ward,
                         "province": prov, "size1": size1, "size2": size2, "first": first, "last": last})


def _binom_by_sex(rng, n_by_sex: np.ndarray, p: np.ndarray, odds_ratio: float = 1.0) -> np.ndarray:
    """Binomial draws for (girls, boys) columns with a girls/boys odds ratio around p."""
    p2 = expit(logit(p)[:, None] + sex_terms(odds_ratio)[None, :])
    return rng.binomial(n_by_sex, p2)


def _split_sex(rng, total: np.ndarray, girls_share: float) -> np.ndarray:
    girls = rng.binomial(total, girls_share)
    return np.stack([girls, total - girls], axis=1)


def simulate_country_year(size: CountrySize, geo: CountryGeography, roster: pd.DataFrame, year: int,
                          seed: int) -> dict[str, pd.DataFrame]:
    """The four template tables of one school year (template ids, ward code and name as that year)."""
    years = size.year_list
    j = years.index(year)
    rng = rng_for(seed, "country", "year", year)
    rate = {k: _rate_path(k, years)[j] for k in _COUNTRY_RATES}
    wards = geo.wards
    merged = year >= size.merge_year
    ward_code = wards["code"].to_numpy(object)
    ward_name = wards["name"].to_numpy(object)
    if merged and len(geo.merged):
        m = wards["merged_into"].to_numpy(object) != ""
        name_of_merged = dict(zip(geo.merged["code"], geo.merged["name"]))
        ward_code = np.where(m, wards["merged_into"].to_numpy(object), ward_code)
        ward_name = np.where(m, [name_of_merged.get(c, "") for c in ward_code], ward_name)
    # fixed effects (same every year: drawn from their own streams)
    eff = rng_for(seed, "country", "effects")
    prov_eff = eff.normal(0, 0.35, size.provinces)
    inst_eff = eff.normal(0, 0.25, len(roster))
    ward_eff = eff.normal(0, 0.25, len(wards))
    facility_u = {c: eff.random(len(roster)) for c in ("cong_trinh_ve_sinh", "ho_tro_tam_ly", "csvc_khuyet_tat")}

    active = ((roster["first"] <= year) & (roster["last"] >= year)).to_numpy()
    r = roster[active].reset_index(drop=True)
    ri = np.flatnonzero(active)
    lin = prov_eff[r["province"].to_numpy()] + inst_eff[ri]
    growth = 1.0 + 0.01 * (year - years[0])
    truong = {
        "ma_truong": r["code"].to_numpy(object), "ten_truong": r["name"].to_numpy(object),
        "loai_truong": r["type"].to_numpy(object), "loai_hinh": r["own"].to_numpy(object),
        "xa_phuong": ward_name[r["ward"].to_numpy()], "ma_xa_phuong": ward_code[r["ward"].to_numpy()],
    }
    is_school = r["type"].isin(T.PRIMARY_TYPES | T.LOWER_SECONDARY_TYPES).to_numpy()
    for col in ("cong_trinh_ve_sinh", "ho_tro_tam_ly", "csvc_khuyet_tat"):
        share = rate[col] if col != "ho_tro_tam_ly" else np.where(is_school, rate[col], 0.15)
        # a latent draw per institution against a rising threshold: a facility once had is kept
        truong[col] = facility_u[col][ri] < expit(logit(share) + 0.8 * prov_eff[r["province"].to_numpy()])
    truong = pd.DataFrame(truong)

    pre = r["type"].isin(T.PRESCHOOL_TYPES).to_numpy()
    kids = _split_sex(rng, rng.poisson(r["size1"].to_numpy()[pre] * 0.55 * growth), 0.48)
    assessed = rng.binomial(kids, 0.93)
    on_track = _binom_by_sex(rng, assessed, expit(logit(rate["on_track"]) + lin[pre]), 1.3)
    mam_non = pd.DataFrame({
        "ma_truong": r["code"].to_numpy(object)[pre],
        "tre_24_59_danh_gia": assessed.sum(1), "tre_24_59_danh_gia_nu": assessed[:, GIRLS],
        "tre_24_59_phu_hop": on_track.sum(1), "tre_24_59_phu_hop_nu": on_track[:, GIRLS],
    })

    parts = []
    for level, types, size_col, entry, final in (("tieu_hoc", T.PRIMARY_TYPES, "size1", 0.205, 0.195),
                                                  ("thcs", T.LOWER_SECONDARY_TYPES, "size2", 0.26, 0.24)):
        at = r["type"].isin(types).to_numpy()
        pupils = _split_sex(rng, rng.poisson(r[size_col].to_numpy()[at] * growth), 0.48)
        total = pupils.sum(1)
        first_grade = rng.binomial(total, entry)
        final_grade = rng.binomial(total, final)
        done = rng.binomial(final_grade, expit(logit(rate[f"complete_{level}"]) + lin[at]))
        drop = _binom_by_sex(rng, pupils, expit(logit(rate[f"drop_{level}"]) - lin[at]), 0.8)
        parts.append(pd.DataFrame({
            "_order": np.flatnonzero(at), "ma_truong": r["code"].to_numpy(object)[at], "cap_hoc": level,
            "hs_dau_nam": total, "hs_dau_nam_nu": pupils[:, GIRLS], "hs_lop_dau_cap": first_grade,
            "hs_lop_cuoi_cap": final_grade, "hs_hoan_thanh": done, "hs_hoan_thanh_nu": rng.binomial(done, 0.49),
            "hs_bo_hoc": drop.sum(1), "hs_bo_hoc_nu": drop[:, GIRLS],
        }))
    pho_thong = pd.concat(parts, ignore_index=True).sort_values(["_order", "cap_hoc"], kind="stable")
    pho_thong = pho_thong.drop(columns="_order").reset_index(drop=True)

    # survey rows: one per ward valid that year (a merged ward once, with both populations)
    survey = pd.DataFrame({"code": ward_code, "name": ward_name, "pop": wards["pop"].to_numpy() * growth,
                           "eff": ward_eff + prov_eff[wards["province"].to_numpy()]})
    survey = survey.groupby("code", sort=False).agg(name=("name", "first"), pop=("pop", "sum"), eff=("eff", "mean"))
    pop, weff = survey["pop"].to_numpy(), survey["eff"].to_numpy()
    xa = {"xa_phuong": survey["name"].to_numpy(object), "ma_xa_phuong": survey.index.to_numpy(object)}
    for den, num, key, per_person in (("tre_5_tuoi", "tre_5_tuoi_hoc_mg", "kindergarten", 0.0145),
                                      ("tre_11_14", "tre_11_14_htth", "primary_done", 0.055),
                                      ("ttn_15_18", "ttn_15_18_tn_thcs", "lower_sec_done", 0.052),
                                      ("tkt_nhu_cau", "tkt_tiep_can", "disabled_access", 0.0007)):
        people = _split_sex(rng, rng.poisson(pop * per_person), 0.485)
        yes = _binom_by_sex(rng, people, expit(logit(rate[key]) + weff), 1.15)
        xa[den], xa[den + T.FEMALE_SUFFIX] = people.sum(1), people[:, GIRLS]
        xa[num], xa[num + T.FEMALE_SUFFIX] = yes.sum(1), yes[:, GIRLS]
    xa_phuong = pd.DataFrame(xa)[[c.id for c in T.XA_PHUONG.columns if c.id != "don_vi_cu"]]  # no reform here
    return {"Truong": truong, "MamNon": mam_non, "PhoThong": pho_thong, "XaPhuong": xa_phuong}


def _country_rows(sheet: T.Sheet, frame: pd.DataFrame, year: int, text_share: float,
                  rng: np.random.Generator) -> list[list]:
    """A sheet as rows of cells: a title row (synthetic, with the school year), a blank row, the header
    (template Vietnamese headers, ward code column included), then the data."""
    cols = [c for c in sheet.columns if c.id in frame.columns]
    title = (f"{SHEET_TITLES[sheet.name]} NĂM HỌC {T.school_year_label(year)} - TOÀN QUỐC "
             f"(DỮ LIỆU GIẢ LẬP / SYNTHETIC DATA)")
    columns = []
    for c in cols:
        v = frame[c.id].to_numpy()
        if c.kind == "yesno":
            columns.append(np.where(v.astype(bool), "Có", "Không").astype(object))
        elif c.kind == "category":
            label = {cat.code: cat.vi for cat in c.categories}
            columns.append(np.array([label[x] for x in v], dtype=object))
        elif c.kind == "count":
            out = v.astype(np.int64).astype(object)
            if text_share > 0:
                pick = np.flatnonzero((v >= 1000) & (rng.random(len(v)) < text_share))
                out[pick] = [f"{int(x):,}".replace(",", ".") for x in v[pick]]  # "1.234"
            columns.append(out)
        else:
            columns.append(v.astype(object))
    data = [list(row) for row in zip(*columns)] if columns and len(frame) else []
    return [[title], [], [c.vi for c in cols], *data]



def write_workbook(path: str | os.PathLike, sheets: dict[str, list[list]]) -> Path:
    """The sheets (rows of cells; None for a blank cell) as an .xlsx, by openpyxl's write-only mode: rows go
    to the file as they are appended, no cell objects are kept. Written atomically."""
    from openpyxl import Workbook

    def write(tmp: Path) -> None:
        wb = Workbook(write_only=True)
        for name, rows in sheets.items():
            ws = wb.create_sheet(name)
            for row in rows:
                ws.append(row)
        wb.save(tmp)

    return write_file(path, write)


def generate_country(out: str | os.PathLike, size: CountrySize = CountrySize(), seed: int = DEFAULT_SEED,
                     progress: bool = False) -> list[Path]:
    """Write a country-sized synthetic raw folder: one workbook per school year (the four template sheets
    with the ward code column, and a GhiChu note), don_vi_hanh_chinh.csv and chi_tieu_ke_hoach.csv."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    geo = country_geography(size, seed)
    roster = _country_roster(size, geo, seed)
    written = [write_file(out / config.CROSSWALK_FILE, small_csv_writer(geo.crosswalk))]
    targets = config.RAW_DIR / config.TARGETS_FILE
    written.append(write_file(out / config.TARGETS_FILE, lambda tmp: tmp.write_bytes(targets.read_bytes())))
    for year in size.year_list:
        started = time.perf_counter()
        tables = simulate_country_year(size, geo, roster, year, seed)
        rng = rng_for(seed, "country", "render", year)
        sheets = {s.name: _country_rows(s, tables[s.name], year, size.text_numbers, rng) for s in T.SHEETS}
        sheets[T.NOTE_SHEET] = [["GHI CHÚ - DỮ LIỆU GIẢ LẬP / NOTE - SYNTHETIC DATA"],
                                [f"{SYNTHETIC_VI} {SYNTHETIC_EN}"],
                                [f"python benchmarks/country_sample.py --seed {seed} ({size})"]]
        written.append(write_workbook(out / T.workbook_name(year), sheets))
        if progress:
            rows = sum(len(t) for t in tables.values())
            print(f"  {T.workbook_name(year)}: {rows:,} rows ({time.perf_counter() - started:.1f} s)", flush=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/country_sample.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default benchmarks/_data/country)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    defaults = CountrySize()
    for name in ("provinces", "districts", "wards", "institutions", "years", "last_year"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name),
                            help=f"default {getattr(defaults, name)}")
    args = parser.parse_args(argv)
    size = CountrySize(provinces=args.provinces, districts=args.districts, wards=args.wards,
                       institutions=args.institutions, years=args.years, last_year=args.last_year)
    start = time.perf_counter()
    paths = generate_country(args.out, size, args.seed, progress=True)
    print(f"Đã tạo {len(paths) - 2} sổ dữ liệu giả lập toàn quốc (seed {args.seed}) trong "
          f"{time.perf_counter() - start:.1f} s / wrote {len(paths) - 2} synthetic country workbooks, "
          f"the crosswalk and the targets -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
