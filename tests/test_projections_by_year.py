"""Every indicator series projected once per reporting year: what a year's report may know, and the files
each year is written to."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import projections_by_year as pby
from analysis.errors import AnalysisError
from analysis.targets import load_targets


def indicator_rows() -> pd.DataFrame:
    """Two CT07 series (the district and one ward), 2019-2023, rising by about a point a year."""
    rows = []
    for level, code, base in (("district", "BEN_CAT", 94.0), ("ward", "HOA_LOI", 90.0)):
        for k, year in enumerate(range(2019, 2024)):
            den = 200
            num = round(den * (base + k) / 100)
            rows.append({"indicator_id": "CT07", "year": year, "geo_level": level, "geo_code": code, "sex": "total",
                         "numerator": num, "denominator": den, "value": 100 * num / den, "series_break": False})
    return pd.DataFrame(rows)


def many_series() -> pd.DataFrame:
    """CT07 and the CT17A cohort proxy (no upper bound) for a district and wards, 2016-2023."""
    rng = np.random.default_rng(7)
    rows = []
    for ind, base in (("CT17A_COHORT", 97.0), ("CT07", 90.0)):
        for level, code in (("ward", "Z_WARD"), ("district", "BEN_CAT"), ("ward", "A_WARD")):
            for sex in ("total", "female"):
                for k, year in enumerate(range(2016, 2024)):
                    den = int(rng.integers(150, 400))
                    num = round(den * (base + 0.8 * k + rng.normal(0, 1.5)) / 100)
                    num = num if ind.endswith("COHORT") else min(den, num)  # a cohort proxy can pass 100%
                    rows.append({"indicator_id": ind, "year": year, "geo_level": level, "geo_code": code, "sex": sex,
                                 "numerator": num, "denominator": den, "value": 100 * num / den,
                                 "series_break": False})
    return pd.DataFrame(rows)


def test_each_reporting_year_uses_only_the_years_it_could_know():
    projections, verdicts = pby.process(indicator_rows(), load_targets(), years=[2021, 2023])
    assert sorted(projections["as_of"].unique()) == [2021, 2023]
    # a reporting year projects from the year after its last observation, to 2030
    first = projections.groupby(["as_of", "geo_code"], observed=True)["year"].min()
    assert set(first.loc[2021]) == {2022} and set(first.loc[2023]) == {2024}
    assert projections["year"].max() == 2030
    assert set(verdicts["as_of"]) == {2021, 2023}
    # what a year knows does not depend on what came later
    early, _ = pby.process(indicator_rows()[lambda f: f["year"] <= 2021], load_targets(), years=[2021])
    pd.testing.assert_frame_equal(early, projections[projections["as_of"] == 2021].reset_index(drop=True),
                                  check_categorical=False)


def test_series_ids_bounds_and_key_columns():
    ind = many_series()
    hist, series = pby.history(ind)
    text = series["series_id"].take(hist["series_id"]).to_numpy()  # each row's number named by its text id
    assert (text == ind[pby.KEY].astype(str).agg("|".join, axis=1)).all()  # same rows, same order
    assert list(series["series_id"]) == list(dict.fromkeys(text))  # numbered in order of first appearance
    cohort = pd.Series(text).str.startswith("CT17A_COHORT|").to_numpy()
    assert hist.loc[cohort, "upper"].isna().all() and (hist.loc[~cohort, "upper"] == 100).all()
    projections, verdicts = pby.process(ind, load_targets(), years=[2022, 2023])
    for frame in (projections, verdicts):
        rebuilt = frame[pby.KEY].astype(str).agg("|".join, axis=1)
        assert (rebuilt == frame["series_id"].astype(str)).all()
    assert isinstance(projections["method"].dtype, pd.CategoricalDtype)
    assert not (verdicts["indicator_id"] == "CT17A_COHORT").any()  # cross-checks have no targets


def test_years_in_parallel_are_what_one_process_gives(tmp_path):
    ind, targets = many_series(), load_targets()
    projections, verdicts = pby.process(ind, targets)
    written = pby.save(ind, targets, tmp_path, jobs=2)
    assert written["years"] == 8 and written["verdicts"] == len(verdicts)
    assert written["projection_rows"] == len(projections)
    for folder in ("projections", "verdicts"):
        assert sorted(p.name for p in (tmp_path / folder).iterdir()) == [f"{y}.parquet" for y in range(2016, 2024)]
    back_p, back_v = pby.load_projections(tmp_path)
    pd.testing.assert_frame_equal(back_p, projections, check_categorical=False)

    def plain(frame):  # a missing text is None in memory and NaN from Parquet: the same missing value
        return frame.astype(object).where(frame.notna(), None)

    pd.testing.assert_frame_equal(plain(back_v), plain(verdicts))
    csv = pd.read_csv(tmp_path / "verdicts.csv", encoding="utf-8-sig")
    assert len(csv) == len(verdicts) and list(csv.columns) == list(verdicts.columns)  # one header, every year
    assert (csv["series_id"] == verdicts["series_id"].astype(str)).all()  # in year order
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the work folder is gone
    one_p, one_v = pby.load_projections(tmp_path, as_of=2020)  # one reporting year: its files only
    pd.testing.assert_frame_equal(plain(one_v), plain(back_v[back_v["as_of"] == 2020].reset_index(drop=True)))
    assert len(one_p) == (back_p["as_of"] == 2020).sum()
    none_p, none_v = pby.load_projections(tmp_path, as_of=2030)  # a year without projections: no rows, same columns
    assert none_p.empty and list(none_p.columns) == list(back_p.columns)
    assert none_v.empty and list(none_v.columns) == list(back_v.columns)


def test_nothing_to_project_is_a_clear_error_and_leaves_the_old_files(tmp_path):
    ind, targets = many_series(), load_targets()
    pby.save(ind, targets, tmp_path, years=[2023])
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(AnalysisError, match="no values to project"):
        pby.save(ind.assign(value=np.nan), targets, tmp_path, jobs=2)
    assert {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["projections", "verdicts", "verdicts.csv"]


def test_a_rerun_replaces_the_folders_as_a_whole(tmp_path):
    """Years of the previous run that the new one does not have do not survive it."""
    ind, targets = many_series(), load_targets()
    pby.save(ind, targets, tmp_path)
    pby.save(ind, targets, tmp_path, years=[2022, 2023])
    for folder in ("projections", "verdicts"):
        assert sorted(p.name for p in (tmp_path / folder).iterdir()) == ["2022.parquet", "2023.parquet"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    projections, verdicts = pby.load_projections(tmp_path)
    assert sorted(projections["as_of"].unique()) == [2022, 2023] == sorted(verdicts["as_of"].unique())


def test_a_killed_swap_is_put_back_by_the_next_reader(tmp_path):
    """A run killed between moving the old folder aside and moving the new one in: the reader puts the old
    folder back and reads it."""
    ind, targets = many_series(), load_targets()
    pby.save(ind, targets, tmp_path, years=[2023])
    (tmp_path / "projections").rename(tmp_path / ".projections.old")
    projections, _ = pby.load_projections(tmp_path)
    assert sorted(projections["as_of"].unique()) == [2023] and not (tmp_path / ".projections.old").exists()


def test_a_reason_does_not_repeat_its_series_id():
    """The engine's notes on a series (here: a cohort proxy without counts) sit in that series' own rows; with
    the id in them, a country's reasons were as many distinct texts as series."""
    projections, _ = pby.process(many_series(), load_targets(), years=[2023])
    cohort = projections[projections["indicator_id"] == "CT17A_COHORT"]
    reasons = set(cohort["method_reason"].astype(str))
    assert all("sampling variance not used" in r for r in reasons)
    assert not any("CT17A_COHORT|" in r for r in reasons)
    assert projections["method_reason"].nunique() <= 3
