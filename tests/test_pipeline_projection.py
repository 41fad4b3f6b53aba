"""Every indicator series projected once per reporting year (vintage): what a year's report may know, and
the compact layout that lets a country's vintages fit in memory."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import pipeline_projection as pp
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
