"""Small cells (children with disabilities by ward): nothing the report or the Excel workbook publishes lets
anyone work out a hidden count (its own counts and rate, or the district total minus the wards shown), and
the reader is told why, in words."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import actions, exports, plots
from analysis import report as rp
from analysis.indicators import load_indicators, registry
from analysis.targets import load_targets

CT20B = registry()["CT20B"]


def wards(counts: list[tuple[int, int]]) -> pd.DataFrame:
    return pd.DataFrame({
        "indicator_id": "CT20B", "geo_level": "ward", "year": 2025, "sex": "total",
        "geo_code": [f"W{i}" for i in range(len(counts))], "geo_name": [f"Phường {i}" for i in range(len(counts))],
        "numerator": [n for n, _ in counts], "denominator": [d for _, d in counts],
        "value": [100 * n / d for n, d in counts]})


def test_a_small_ward_is_hidden_with_another_so_the_total_gives_nothing_away():
    # Phường 0: 12 of 15 children accessing, so 3 not accessing; alone, total minus the others would show it
    assert rp.hidden(wards([(12, 15), (40, 50), (30, 60), (25, 30)]), CT20B, "ward").tolist() == [
        "small", "", "", "other"]
    # hiding Phường 3 (nobody left out) would leave the two hidden wards' 3 children not accessing visible
    # as a total: one more ward is hidden
    assert rp.hidden(wards([(12, 15), (40, 50), (30, 60), (30, 30)]), CT20B, "ward").tolist() == [
        "small", "other", "", "other"]
    # two small wards protect each other, unless together they still leave out fewer than 5 children (3 + 1);
    # no small ward, nothing hidden; the district level is never hidden
    assert rp.hidden(wards([(12, 15), (6, 8), (30, 60)]), CT20B, "ward").tolist() == ["small", "small", ""]
    assert rp.hidden(wards([(12, 15), (7, 8), (30, 60)]), CT20B, "ward").tolist() == ["small", "small", "other"]
    assert rp.hidden(wards([(40, 50), (30, 60)]), CT20B, "ward").tolist() == ["", ""]
    assert rp.hidden(wards([(2, 3)]), CT20B, "district").tolist() == [""]
    assert rp.hidden(wards([(2, 3)]), registry()["CT16"], "ward").tolist() == [""]  # not a small-count indicator


@pytest.fixture(scope="module")
def sample(sample_processed):
    return sample_processed, load_indicators(sample_processed)


def _value(cell):
    return cell.value if isinstance(cell, rp.Num) else None


@pytest.mark.parametrize("year", range(2016, 2027))
def test_no_hidden_count_can_be_worked_out_from_the_report(sample, year):
    """Try the subtractions a reader could: a hidden ward's own cells, and the district's counts (the
    indicator table of the report and the workbook) minus every ward shown."""
    _, ind = sample
    district = rp.indicator_table(ind, year, "vi").set_index("Chỉ tiêu").loc["CT20B"]
    total_n, total_d = _value(district["Tử số"]), _value(district["Mẫu số"])
    table = rp.ward_table(ind, "CT20B", year, "vi")
    shown = table[[isinstance(c, rp.Num) for c in table["Tử số"]]]
    hidden = table.drop(shown.index)
    for _, row in hidden.iterrows():  # no number at all, and the reason in words
        assert not any(isinstance(c, rp.Num) for c in row)
        assert row["Giá trị"] in (rp.t("suppressed_small"), rp.t("suppressed_other"))
        assert "ít hơn 5 em" in rp.t("suppressed_small")
    for _, row in shown.iterrows():  # a ward shown has no group of 1-4 children
        assert not rp.is_suppressed(row["Tử số"].value, row["Mẫu số"].value), row["Xã/phường"]
    if len(hidden):
        left_n = total_n - sum(c.value for c in shown["Tử số"])
        left_out = (total_d - total_n) - sum(d.value - n.value for n, d in zip(shown["Tử số"], shown["Mẫu số"]))
        assert len(hidden) >= 2, "one hidden ward is the district total minus the others"
        assert not 0 < left_n < 5 and not 0 < left_out < 5, "the hidden wards' total is itself a small group"


@pytest.mark.parametrize("year", [2025, 2026])
def test_hidden_wards_stay_hidden_in_the_workbook_and_the_chart(sample, year):
    folder, ind = sample
    hidden = set(rp.ward_table(ind, "CT20B", year, "vi").pipe(
        lambda t: t[[not isinstance(c, rp.Num) for c in t["Tử số"]]])["Xã/phường"])
    assert hidden
    sheet = exports.workbook_tables(year, "vi", folder)["Xã phường xa chỉ tiêu thị xã"]
    rows = sheet[(sheet["Chỉ tiêu"] == "CT20B") & sheet["Xã/phường"].isin(hidden)]
    assert not any(isinstance(c, rp.Num) for c in rows.drop(columns=["Năm đích", "Chỉ tiêu của thị xã"]).to_numpy().ravel())
    fig = plots.ward_chart(ind, "CT20B", year, load_targets(), "vi")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels and set(hidden) <= set(labels)  # suppressed wards keep their name on the axis
    assert sum(t.startswith("ẩn") for t in texts) == len(hidden)  # and say why
    assert len(ax.patches) == len(labels) - len(hidden)  # no bar for a hidden ward
    plots.plt.close(fig)


def test_the_furthest_wards_hide_the_same_wards(sample):
    _, ind = sample
    far = actions.wards_furthest(ind, load_targets(), 2025, 2030, n=20)
    table = rp.furthest_table(far, ind, 2025, "vi")
    rows = table[table["Chỉ tiêu"] == "CT20B"]
    hidden = set(rp.ward_table(ind, "CT20B", 2025, "vi").pipe(
        lambda t: t[[not isinstance(c, rp.Num) for c in t["Tử số"]]])["Xã/phường"])
    for _, row in rows.iterrows():
        assert isinstance(row["Giá trị"], rp.Num) != (row["Xã/phường"] in hidden)
        assert isinstance(row["Còn thiếu so với chỉ tiêu của thị xã (điểm phần trăm)"], rp.Num) != (
            row["Xã/phường"] in hidden)
