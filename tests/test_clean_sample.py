"""Cleaning the shipped sample: every injected soft problem is caught, cosmetic defects pass silently."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import clean, config


@pytest.fixture(scope="module")
def sample():
    run = clean.clean_all(config.RAW_DIR)
    assert not run.failures, [str(f) for f in run.failures]
    return clean.combine(run)


def manifest() -> pd.DataFrame:
    return pd.read_csv(config.RAW_DIR / "sample_manifest.csv", encoding="utf-8-sig", dtype=str)


def test_every_year_is_cleaned(sample):
    assert sorted(sample["files"]["year"]) == list(range(2016, 2027))
    assert (sample["files"]["status"] == "ok").all()


def test_soft_problems_are_exactly_the_injected_ones(sample):
    q = sample["quality"]
    found = q[q["severity"].isin(["error", "warning"])]
    soft = manifest().query("`class` == 'soft'")
    got = {(int(r.year), r.cell if isinstance(r.cell, str) and r.cell else r.ma_truong)
           for r in found.astype(object).itertuples()}
    want = {(int(r.year), r.cell if isinstance(r.cell, str) else r.ma_truong) for r in soft.itertuples()}
    assert got == want, (got - want, want - got)


def test_injected_values_are_excluded_not_guessed(sample):
    pho = sample["pho_thong"].set_index(["year", "ma_truong", "cap_hoc"])
    assert pd.isna(pho.loc[(2018, "BC-TH-005", "tieu_hoc"), "hs_dau_nam_nu"])
    assert pd.isna(pho.loc[(2021, "BC-CS-004", "thcs"), "hs_hoan_thanh"])
    mam = sample["mam_non"].set_index(["year", "ma_truong"])
    assert pd.isna(mam.loc[(2024, "BC-MN-006"), "tre_24_59_phu_hop"])
    assert (2021, "BC-MN-019") not in mam.index
    tr = sample["truong"].set_index(["year", "ma_truong"])
    assert pd.isna(tr.loc[(2024, "BC-MN-016"), "csvc_khuyet_tat"])


def test_cosmetic_defects_pass_silently(sample):
    q = sample["quality"]
    assert set(q.loc[q["severity"] == "info", "code"]) <= {"unknown_column"}
    # NFD year and stray spaces: names come out composed and trimmed
    names = sample["truong"]["ten_truong"].dropna()
    assert names.map(lambda s: s == s.strip() and "  " not in s).all()
    import unicodedata

    assert names.map(lambda s: unicodedata.is_normalized("NFC", s)).all()
    # wards resolve to the crosswalk every year (names vary: "P. Mỹ Phước", bare, lower case)
    assert sample["truong"]["ma_xa_phuong"].notna().all()
    assert sample["xa_phuong"].groupby("year")["ma_xa_phuong"].nunique().to_dict() == {
        **{y: 8 for y in range(2016, 2026)}, 2026: 7}
