"""Reader-facing formats: Vietnamese numbers, suppression of small cells, neutralised formulas, escaping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import report as rp
from analysis.formats import neutralise_formula, neutralise_frame
from analysis.indicators import registry


@pytest.mark.parametrize("value, lang, decimals, text", [
    (99.1, "vi", 1, "99,1"), (99.1, "en", 1, "99.1"), (1234567, "vi", 0, "1.234.567"), (1234567, "en", 0, "1,234,567"),
    (0.125, "vi", 2, "0,12"), (np.nan, "vi", 1, "—"), (None, "en", 1, "—"),
])
def test_fmt_num(value, lang, decimals, text):
    assert rp.fmt_num(value, lang, decimals) == text


def test_fmt_pct_and_points():
    assert rp.fmt_pct(99.14, "vi") == "99,1%" and rp.fmt_pct(0.084, "vi") == "0,08%"
    assert rp.fmt_pct(98.0, "en", 1) == "98.0%"
    assert rp.fmt_points(0.25, "vi", 1) in ("+0,2 điểm phần trăm", "+0,3 điểm phần trăm")
    assert rp.fmt_points(-1.5, "en", 1) == "−1.5 pts" and rp.fmt_points(-1.5, "vi", 1, unit=False) == "−1,5"
    ct17b, ct07 = registry()["CT17B"], registry()["CT07"]
    assert str(rp.target_cell(100, ct07, "vi")) == "≥ 100%" and str(rp.target_cell(99.1, ct07, "vi")) == "≥ 99,1%"
    assert str(rp.target_cell(0.1, ct17b, "vi")) == "< 0,1%" and str(rp.target_cell(0.12, ct17b, "en")) == "< 0.12%"
    assert rp.target_cell(None, ct07, "vi") == "Không đặt"


def test_numbers_in_tables_are_numbers_with_a_format():
    """A table cell is text the Vietnamese way on screen and a number with a number format in Excel."""
    assert (str(rp.pct(96.59, "vi", 1)), rp.pct(96.59, "vi", 1).excel()) == ("96,6%", (0.9659, "0.0%"))
    assert (str(rp.count(10300, "vi")), rp.count(10300, "vi").excel()) == ("10.300", (10300, "#,##0"))
    assert (str(rp.points(0.25, "vi", 2)), rp.points(0.25, "vi", 2).excel()) == ("+0,25", (0.25, "+0.00;-0.00;0.00"))
    assert (str(rp.Num(2025, "int")), rp.Num(2025, "int").excel()) == ("2025", (2025, "0"))
    assert rp.target_cell(0.12, registry()["CT17B"], "vi").excel() == (0.0012, '"< "0.00%')
    assert rp.pct(np.nan, "vi") == "—" and rp.count(None, "vi") == "—"


@pytest.mark.parametrize("value, target, decimals, shown", [
    (0.0996, 0.1, 2, "0,0996%"),  # under a strict '< 0,1%' target, '0,10%' would look like a miss
    (99.96, 100, 1, "99,96%"),    # and '100,0%' beside '≥ 100%' like a success
    (98.7, 99.1, 1, "98,7%"), (0.08, 0.12, 2, "0,08%"), (100.0, 100, 1, "100,0%"),
])
def test_values_near_a_target_show_the_decimals_that_decide(value, target, decimals, shown):
    assert rp.fmt_pct(value, "vi", rp.decimals_near(value, [target], decimals)) == shown


def test_small_cell_rule():
    # 2 of 20 children identifiable, 18 of 20 too (2 not accessing), 10 of 20 not
    assert rp.is_suppressed(2, 20) and rp.is_suppressed(18, 20) and not rp.is_suppressed(10, 20)
    assert rp.is_suppressed(0, 3) and not rp.is_suppressed(0, 0)


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx"])
def test_formula_like_text_is_neutralised(text):
    assert neutralise_formula(text) == "'" + text
    assert neutralise_formula("Trường Mầm non") == "Trường Mầm non"
    frame = neutralise_frame(pd.DataFrame({"name": [text], "n": [1]}))
    assert frame["name"].iloc[0].startswith("'") and frame["n"].iloc[0] == 1


def test_neutralising_a_frame_equals_neutralising_each_cell():
    """The frame is neutralised by distinct values (fast on millions of rows): same result as cell by cell,
    in every kind of text column, numbers and missing values untouched, the input not modified."""
    texts = ["=1+1", "Trường A", None, "-5", "@x", "Trường A", "+", "\rB"]
    frame = pd.DataFrame({
        "object": pd.Series(texts, dtype=object),
        "string": pd.Series(texts, dtype="string"),
        "category": pd.Series(texts, dtype="category"),
        "mixed": pd.Series([1, "=2", 3.5, None, "a", "-b", 7, "@"], dtype=object),
        "number": [-1.0, 2.0, None, 4.0, 5.0, 6.0, 7.0, 8.0],
        "=header": ["x"] * 8,
    })
    before = frame.copy()
    out = neutralise_frame(frame)
    pd.testing.assert_frame_equal(frame, before)
    for col in ("object", "string", "category", "mixed"):
        expected = [neutralise_formula(v) if isinstance(v, str) else v for v in frame[col].astype(object)]
        got = out[col].astype(object).tolist()
        assert [None if pd.isna(v) else v for v in got] == [None if pd.isna(v) else v for v in expected], col
        assert out[col].dtype == frame[col].dtype or col == "category", col
    assert out["number"].equals(frame["number"])
    assert list(out.columns)[-1] == "'=header"


def test_show_escapes_html_and_is_deterministic():
    frame = pd.DataFrame({"Tên": ["<script>alert(1)</script>"], "n": ["1"]})
    html = rp.show(frame, "x", left=("Tên",))._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert html == rp.show(frame, "x", left=("Tên",))._repr_html_()
    assert "<script>" in repr(rp.show(frame, "x"))  # plain text form, for terminals and nbval


def test_labels_exist_in_both_languages():
    labels = rp._labels()
    for key, entry in labels.items():
        assert set(entry) == {"vi", "en"} and entry["vi"] and entry["en"], key
    with pytest.raises(ValueError):
        rp.t("value", "fr")


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_table_headers_never_collide(lang):
    """Two labels with the same text would silently overwrite a column (the id vanished once)."""
    groups = [("indicator", "indicator_name", "baseline", "value", "numerator", "denominator", "district_target",
               "change_since_last", "target_level", "target_year", "projected_or_actual", "probability",
               "change_observed_needed", "status", "method", "ward", "institution", "school_type", "ownership",
               "shortfall", "code", "severity", "sheet", "row", "cell", "column", "message", "female", "male", "gpi",
               "years_used", "weights", "not_reported_what", "kept", "rows_read", "error", "warning", "info")]
    for keys in groups:
        texts = [rp.t(k, lang) for k in keys]
        assert len(texts) == len(set(texts)), sorted(x for x in texts if texts.count(x) > 1)


def test_csv_for_excel_has_the_byte_order_mark_one_header_and_neutralised_text(tmp_path):
    """indicators.csv, quality.csv and verdicts.csv open in Excel on an office PC: UTF-8 with a byte order mark,
    text that a spreadsheet would run as a formula neutralised (categories included), numbers untouched."""
    from analysis.formats import write_csv

    frame = pd.DataFrame({"name": [f"Trường {i}" if i % 7 else f"=cmd{i}" for i in range(20)],
                          "value": np.linspace(0, 100, 20), "n": np.arange(20),
                          "kind": pd.Categorical(["a", "=x"] * 10), "row": [1, "sheet"] * 10})
    write_csv(tmp_path / "t.csv", frame)
    raw = (tmp_path / "t.csv").read_bytes()
    assert raw.startswith("\ufeff".encode()) and raw.count(b"name") == 1
    back = pd.read_csv(tmp_path / "t.csv", encoding="utf-8-sig")
    assert back["name"].iloc[0] == "'=cmd0" and back["name"].iloc[1] == "Trường 1"
    assert back["kind"].iloc[1] == "'=x" and back["n"].tolist() == list(range(20))
    assert back["value"].iloc[-1] == 100 and back["row"].astype(str).tolist()[:2] == ["1", "sheet"]
