"""Every indicator series projected once per reporting year (vintage): what a year's report may know, and
the compact layout that lets a country's vintages fit in memory."""

from __future__ import annotations

import numpy as np
import pytest
import pandas as pd

from analysis import pipeline_projection as pp
from analysis.errors import AnalysisError
from analysis.indicators import load_targets


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


def test_each_vintage_uses_only_the_years_it_could_know():
    projections, verdicts = pp.process(indicator_rows(), load_targets(), vintages=[2021, 2023])
    assert sorted(projections["as_of"].unique()) == [2021, 2023]
    # a vintage projects from the year after its last observation, to 2030
    first = projections.groupby(["as_of", "geo_code"], observed=True)["year"].min()
    assert set(first.loc[2021]) == {2022} and set(first.loc[2023]) == {2024}
    assert projections["year"].max() == 2030
    assert set(verdicts["as_of"]) == {2021, 2023}


def test_key_columns_match_the_series_id_and_text_is_categorical():
    projections, _ = pp.process(indicator_rows(), load_targets(), vintages=[2022, 2023])
    rebuilt = projections[pp.KEY].astype(str).agg(pp.SEP.join, axis=1)
    assert (rebuilt == projections["series_id"].astype(str)).all()
    for col in (*pp.KEY, "series_id", "method"):
        assert isinstance(projections[col].dtype, pd.CategoricalDtype), col
    # categories are sorted like text, so sorting the column sorts it alphabetically
    assert list(projections["geo_code"].cat.categories) == ["BEN_CAT", "HOA_LOI"]


def test_concatenating_vintages_with_different_categories_keeps_every_value():
    a = pp._compact(pd.DataFrame({"series_id": ["x|1", "y|2"], "v": [1.0, 2.0]}))
    b = pp._compact(pd.DataFrame({"series_id": ["z|3", "x|1"], "v": [3.0, np.nan]}))
    out = pp._concat_categorical([a, b])
    assert isinstance(out["series_id"].dtype, pd.CategoricalDtype)
    assert out["series_id"].astype(str).tolist() == ["x|1", "y|2", "z|3", "x|1"]
    assert list(out["series_id"].cat.categories) == ["x|1", "y|2", "z|3"]
    assert out["v"].tolist()[:3] == [1.0, 2.0, 3.0]


def many_series() -> pd.DataFrame:
    """CT07 and the CT17A cohort proxy (no upper bound) for a district and wards, 2016-2023, with
    ids chosen so that text order and first-appearance order differ ('CT17A_COHORT' sorts before 'CT17A|')."""
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


def test_numbered_history_numbers_series_in_the_order_of_their_text_ids():
    ind = many_series()
    numbered, names = pp.numbered_history(ind)
    assert list(names) == sorted(names) and len(names) == 12
    text = pp.history(ind)
    assert (names[numbered["series_id"]] == text["series_id"]).all()
    assert (text["series_id"] == pp.series_id(ind)).all()  # same rows, same order as the indicator table
    cohort = text["series_id"].str.startswith("CT17A_COHORT")
    assert text.loc[cohort, "upper"].isna().all() and (text.loc[~cohort, "upper"] == 100).all()


def test_vintages_in_parallel_give_exactly_what_one_process_gives():
    ind, targets = many_series(), load_targets()
    serial = pp.process(ind, targets, jobs=1)
    parallel = pp.process(ind, targets, jobs=2)
    pd.testing.assert_frame_equal(serial[0], parallel[0])
    pd.testing.assert_frame_equal(serial[1], parallel[1])
    assert sorted(serial[0]["as_of"].unique()) == list(range(2016, 2024))


def test_saved_vintages_read_back_as_the_frames_process_returns(tmp_path):
    ind, targets = many_series(), load_targets()
    projections, verdicts = pp.process(ind, targets)
    written = pp.save_vintages(ind, targets, tmp_path, jobs=2)
    assert written["vintages"] == 8 and written["verdicts"] == len(verdicts)
    assert written["projection_rows"] == len(projections)
    for folder in ("projections", "verdicts"):
        assert sorted(p.name for p in (tmp_path / folder).iterdir()) == [f"{y}.parquet" for y in range(2016, 2024)]
    back_p, back_v = pp.load_projections(tmp_path)
    pd.testing.assert_frame_equal(back_p, projections)  # categories sorted again, as one frame would have them
    def plain(frame):  # a missing text is None in memory and NaN from Parquet: the same missing value
        return frame.astype(object).where(frame.notna(), None)

    pd.testing.assert_frame_equal(plain(back_v), plain(verdicts))
    csv = pd.read_csv(tmp_path / "verdicts.csv", encoding="utf-8-sig")
    assert len(csv) == len(verdicts) and list(csv.columns) == list(verdicts.columns)  # one header, every vintage
    assert (csv["series_id"] == verdicts["series_id"].astype(str)).all()  # in year order, as the frame
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the workers' CSV parts are gone
    one_p, one_v = pp.load_projections(tmp_path, as_of=2020)  # one reporting year: its files only
    pd.testing.assert_frame_equal(one_v, back_v[back_v["as_of"] == 2020].reset_index(drop=True))
    pd.testing.assert_frame_equal(one_p.astype({c: object for c in one_p.select_dtypes("category")}),
                                  back_p[back_p["as_of"] == 2020].reset_index(drop=True)
                                  .astype({c: object for c in one_p.select_dtypes("category")}))
    none_p, none_v = pp.load_projections(tmp_path, as_of=2030)  # a year without projections: no rows, same columns
    assert none_p.empty and list(none_p.columns) == list(back_p.columns)
    assert none_v.empty and list(none_v.columns) == list(back_v.columns)


def test_nothing_to_project_is_a_clear_error_and_leaves_the_old_files(tmp_path):
    ind, targets = many_series(), load_targets()
    pp.save_vintages(ind, targets, tmp_path, vintages=[2023])
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    empty = ind.assign(value=np.nan)
    with pytest.raises(AnalysisError, match="no values to project"):
        pp.save_vintages(empty, targets, tmp_path, jobs=2)
    assert {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["projections", "verdicts", "verdicts.csv"]


def test_a_rerun_replaces_the_projections_folder_as_a_whole(tmp_path):
    """Vintages of the previous run that the new one does not have do not survive it; the single file of
    earlier versions is removed."""
    ind, targets = many_series(), load_targets()
    pp.save_vintages(ind, targets, tmp_path)
    (tmp_path / "projections.parquet").write_bytes(b"old layout")
    (tmp_path / "verdicts.parquet").write_bytes(b"old layout")
    pp.save_vintages(ind, targets, tmp_path, vintages=[2022, 2023])
    for folder in ("projections", "verdicts"):
        assert sorted(p.name for p in (tmp_path / folder).iterdir()) == ["2022.parquet", "2023.parquet"]
    assert not (tmp_path / "projections.parquet").exists() and not (tmp_path / "verdicts.parquet").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    projections, verdicts = pp.load_projections(tmp_path)
    assert sorted(projections["as_of"].unique()) == [2022, 2023] == sorted(verdicts["as_of"].unique())


def test_a_reason_does_not_repeat_its_series_id():
    """The engine's notes on a series (here: a cohort proxy without counts) sit in that series' own rows; with
    the id in them, a country's reasons were as many distinct texts as series."""
    projections, _ = pp.process(many_series(), load_targets(), vintages=[2023])
    cohort = projections[projections["indicator_id"] == "CT17A_COHORT"]
    reasons = set(cohort["method_reason"].astype(str))
    assert all("sampling variance not used" in r for r in reasons)
    assert not any("CT17A_COHORT|" in r for r in reasons)
    assert projections["method_reason"].nunique() <= 3
