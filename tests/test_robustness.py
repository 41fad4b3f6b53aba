"""Bad input never crashes, corrupts or leaks: a corpus of damaged workbooks, generated here, each with its
documented outcome — a clear bilingual error naming file/sheet/row/column and a non-zero exit, or a logged
quality problem with the value excluded — and never a traceback, a hang or a silent wrong number."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from conftest import minimal_sheets, write_workbook

from analysis import clean
from analysis.errors import DataFileError
from analysis.geography import Crosswalk

FILE = "2022-2023.xlsx"


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *args], capture_output=True, text=True, timeout=timeout)


def clean_path(path: Path, raw_dir: Path) -> clean.CleanYear:
    return clean.clean_workbook(path, Crosswalk.load(raw_dir))


def problems(result) -> pd.DataFrame:
    return clean.quality_frame(result.problems)


def rezip(path: Path, edit) -> None:
    """Rewrite an xlsx, passing every member through ``edit(name, bytes) -> bytes``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, edit(info.filename, src.read(info.filename)))
    path.write_bytes(buf.getvalue())


# --- files that cannot be used: a clear error and a non-zero exit ------------------------------------------------

def _fatal_cases(tmp: Path) -> dict[str, tuple[bytes | None, str]]:
    ok = write_workbook(tmp / "ok.xlsx", minimal_sheets()).read_bytes()
    return {
        "empty": (b"", "file_empty"),
        "renamed_csv": ("Mã trường,Tên trường\nMN01,Hoa Sen\n".encode(), "file_not_xlsx"),
        "renamed_pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "file_not_xlsx"),
        "password_protected": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, "file_encrypted_or_xls"),
        "truncated_zip": (ok[: len(ok) // 2], "file_unreadable"),
        "corrupted_zip": (ok[:200] + bytes(b ^ 0x5A for b in ok[200:400]) + ok[400:], "file_unreadable"),
    }


@pytest.mark.parametrize("case", ["empty", "renamed_csv", "renamed_pdf", "password_protected", "truncated_zip",
                                  "corrupted_zip"])
def test_unusable_files_stop_with_a_clear_message(raw_dir, tmp_path, case):
    content, code = _fatal_cases(tmp_path)[case]
    (raw_dir / FILE).write_bytes(content)
    with pytest.raises(DataFileError) as err:
        clean_path(raw_dir / FILE, raw_dir)
    assert err.value.code == code and err.value.file == FILE
    assert err.value.message_vi and err.value.message_en


def test_encrypted_zip_member(raw_dir):
    path = write_workbook(raw_dir / FILE, minimal_sheets())
    data = bytearray(path.read_bytes())
    # set the "encrypted" flag of every local and central header, as a password-protected zip has
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        for m in re.finditer(re.escape(sig), bytes(data)):
            data[m.start() + offset] |= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DataFileError) as err:
        clean_path(path, raw_dir)
    assert err.value.code == "file_encrypted_or_xls"


def test_cli_exits_non_zero_without_traceback_for_every_unusable_file(raw_dir, tmp_path):
    for case, (content, _code) in _fatal_cases(tmp_path).items():
        (raw_dir / FILE).write_bytes(content)
        res = run_cli("clean", "--raw-dir", str(raw_dir), "--processed-dir", str(tmp_path / "out"))
        assert res.returncode == 1, case
        assert "Traceback" not in res.stderr and FILE in res.stderr and "/" in res.stderr, case
        assert not (tmp_path / "out" / "truong.parquet").exists()


def test_workbook_without_the_expected_sheets(raw_dir):
    path = write_workbook(raw_dir / FILE, {"Sheet1": [["a", "b"], [1, 2]]})
    with pytest.raises(DataFileError) as err:
        clean_path(path, raw_dir)
    assert err.value.code == "missing_sheet" and "Sheet1" in err.value.message_vi


def test_sheets_with_headers_only(raw_dir):
    header_at = {"Truong": 4, "MamNon": 1, "PhoThong": 0, "XaPhuong": 0}
    sheets = {name: [rows[header_at[name]]] for name, rows in minimal_sheets().items()}
    result = clean_path(write_workbook(raw_dir / FILE, sheets), raw_dir)
    q = problems(result)
    assert sorted(q.loc[q["code"] == "no_data_rows", "sheet"]) == ["MamNon", "PhoThong", "Truong", "XaPhuong"]
    assert all(len(t) == 0 for t in result.tables.values())


def test_merged_header_cells(raw_dir):
    path = raw_dir / FILE
    sheets = minimal_sheets()
    write_workbook(path, sheets)
    wb = openpyxl.load_workbook(path)
    ws = wb["MamNon"]
    ws.insert_rows(2)  # a two-row header made with merged cells
    ws["B2"], ws["C2"], ws["D2"], ws["E2"] = "Tổng số", "Nữ", "Tổng số", "Nữ"
    ws["B1"], ws["C1"], ws["D1"], ws["E1"] = "Trẻ 24-59 tháng được đánh giá", None, "Trẻ 24-59 tháng phát triển phù hợp", None
    ws.merge_cells("B1:C1")
    ws.merge_cells("D1:E1")
    ws.merge_cells("A1:A2")
    wb.save(path)
    result = clean_path(path, raw_dir)
    assert problems(result).empty
    assert result.tables["MamNon"]["tre_24_59_phu_hop_nu"].tolist() == [94, 14]


def test_merged_header_without_sub_header_is_not_silent(raw_dir):
    sheets = minimal_sheets()
    sheets["MamNon"][1] = ["Mã trường", "Trẻ 24-59 tháng được đánh giá", None, "Trẻ 24-59 tháng phát triển phù hợp",
                           "Trẻ 24-59 tháng phát triển phù hợp – Nữ"]
    result = clean_path(write_workbook(raw_dir / FILE, sheets), raw_dir)
    q = problems(result)
    assert q.loc[q["code"] == "unnamed_column", "cell"].tolist() == ["C2"]


def _with_formulas(raw_dir: Path, cached: bool) -> Path:
    sheets = minimal_sheets()
    sheets["MamNon"][2][1] = "=150+50"  # MN01 assessed, Excel cell B3
    path = write_workbook(raw_dir / FILE, sheets)
    if cached:
        rezip(path, lambda name, data: data.replace(b"<f>150+50</f><v />", b"<f>150+50</f><v>200</v>")
              if name.endswith("sheet2.xml") else data)
    return path


def test_formula_with_cached_value_is_read(raw_dir):
    result = clean_path(_with_formulas(raw_dir, cached=True), raw_dir)
    assert problems(result).empty
    assert result.tables["MamNon"]["tre_24_59_danh_gia"].tolist() == [200, 30]


def test_formula_without_cached_value_is_named(raw_dir):
    result = clean_path(_with_formulas(raw_dir, cached=False), raw_dir)
    q = problems(result)
    hit = q[q["code"] == "formula"]
    assert hit[["sheet", "cell"]].values.tolist() == [["MamNon", "B3"]]
    assert "lưu lại" in hit["message_vi"].iloc[0] and "re-save" in hit["message_en"].iloc[0]
    assert pd.isna(result.tables["MamNon"]["tre_24_59_danh_gia"].iloc[0])
    # and the totals row (230) now disagrees with the rows that could be read: logged, not trusted
    assert "totals_mismatch" in set(q["code"])


@pytest.mark.parametrize("cell, code", [
    ("ba mươi", "not_number"), (pd.Timestamp("2023-05-01").to_pydatetime(), "date"), (-5, "negative"),
    (12.5, "fraction"), ("12,5", "fraction"), ("1.2.3", "not_number"), ("١٢", "not_number"),
])
def test_bad_counts_are_excluded(raw_dir, cell, code):
    sheets = minimal_sheets()
    sheets["XaPhuong"][1][5] = cell  # Mỹ Phước, children 11-14 (F2)
    result = clean_path(write_workbook(raw_dir / FILE, sheets), raw_dir)
    q = problems(result)
    assert q.loc[q["cell"] == "F2", "code"].tolist() == [code]
    assert pd.isna(result.tables["XaPhuong"]["tre_11_14"].iloc[0])
    # its subset is no longer checked against a missing total: kept, but the pair drops out of CT17A


def test_totals_row_that_disagrees(raw_dir):
    sheets = minimal_sheets()
    sheets["XaPhuong"][3][1] = "1.600"  # 1000 + 500 = 1500
    q = problems(clean_path(write_workbook(raw_dir / FILE, sheets), raw_dir))
    assert q[["code", "cell", "severity"]].values.tolist() == [["totals_mismatch", "B4", "warning"]]


def test_control_characters_and_rtl_marks_in_names(raw_dir):
    sheets = minimal_sheets()
    sheets["Truong"][5][1] = "Trường\u202e Mầm non BELL Hoa\u200f Sen"
    sheets["Truong"][6][0] = "MN\u200b02"
    path = write_workbook(raw_dir / FILE, sheets)
    # Excel stores control characters as _xHHHH_ escapes (openpyxl refuses to write them directly)
    rezip(path, lambda name, data: data.replace(b"BELL", b"_x0007__x001B_"))
    result = clean_path(path, raw_dir)
    t = result.tables["Truong"]
    assert t["ten_truong"].iloc[0] == "Trường Mầm non Hoa Sen"
    assert t["ma_truong"].tolist()[1] == "MN02" and len(result.tables["MamNon"]) == 2
    assert (problems(result)["code"] == "invisible_characters").sum() == 2


def test_very_long_strings(raw_dir):
    sheets = minimal_sheets()
    sheets["Truong"][5][1] = "Trường " + "A" * 20_000
    sheets["PhoThong"][1][8] = "9" * 5000
    result = clean_path(write_workbook(raw_dir / FILE, sheets), raw_dir)
    q = problems(result)
    assert len(result.tables["Truong"]["ten_truong"].iloc[0]) == clean.MAX_TEXT
    assert set(q["code"]) == {"text_too_long", "not_number"} or set(q["code"]) == {"text_too_long", "too_large"}
    assert q["value"].str.len().max() <= 80  # messages quote a short excerpt, never the whole value


def test_hundred_thousand_rows(raw_dir):
    """Large but legitimate: cleaned in reasonable time, nothing lost."""
    import time

    sheets = minimal_sheets()
    extra = [[f"X{i:06d}", f"Nhóm trẻ {i}", "Nhóm trẻ/Lớp MG độc lập", "Tư thục", "Mỹ Phước", "Có", "Không", "Không"]
             for i in range(100_000)]
    sheets["Truong"] = sheets["Truong"][:9] + extra
    path = write_workbook(raw_dir / FILE, sheets)
    start = time.perf_counter()
    result = clean_path(path, raw_dir)
    elapsed = time.perf_counter() - start
    assert len(result.tables["Truong"]) == 100_004
    assert elapsed < 120, elapsed  # a guard against a hang, not a speed goal (benchmarks measure speed)
    q = problems(result)
    assert (q["code"] == "not_reported").sum() == 100_000  # every new group lacks its MamNon row: said so


def test_absurdly_large_sheet_is_refused(raw_dir, monkeypatch):
    from analysis import read

    monkeypatch.setattr(read, "MAX_ROWS", 50)
    sheets = minimal_sheets()
    sheets["XaPhuong"] += [["Mỹ Phước", *([1] * 16)]] * 60
    with pytest.raises(DataFileError) as err:
        clean_path(write_workbook(raw_dir / FILE, sheets), raw_dir)
    assert err.value.code == "sheet_too_large" and err.value.sheet == "XaPhuong"


def test_school_missing_from_truong_and_duplicate_codes(raw_dir):
    sheets = minimal_sheets()
    sheets["PhoThong"].append(["ZZ99", "THCS", 100, 50, 30, 25, 20, 10, 1, 0])
    sheets["XaPhuong"].insert(2, ["Thới Hòa", *([1] * 16)])
    result = clean_path(write_workbook(raw_dir / FILE, sheets), raw_dir)
    q = problems(result)
    assert q.loc[q["code"] == "unknown_school", "value"].tolist() == ["ZZ99"]
    assert (q["code"] == "duplicate_key").sum() == 2  # both Thới Hòa rows
    assert result.tables["XaPhuong"]["ma_xa_phuong"].tolist() == ["MY_PHUOC"]


def test_year_inside_disagrees_with_file_name(raw_dir):
    path = write_workbook(raw_dir / "2023-2024.xlsx", minimal_sheets(2023))
    res = run_cli("clean", "--raw-dir", str(raw_dir), "--processed-dir", str(raw_dir.parent / "out"))
    assert res.returncode == 1 and "2022-2023" in res.stderr and "Traceback" not in res.stderr
    assert path.exists()


def test_file_names_that_are_not_school_years_are_ignored(raw_dir, tmp_path):
    write_workbook(raw_dir / FILE, minimal_sheets())
    write_workbook(raw_dir / "~$2022-2023.xlsx", {"x": [[1]]})  # Excel's lock file
    write_workbook(raw_dir / "ban sao 2022-2023.xlsx", {"x": [[1]]})
    res = run_cli("clean", "--raw-dir", str(raw_dir), "--processed-dir", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr


# --- hypothesis: randomly damaged copies of the sample ------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from analysis import config  # noqa: E402
from analysis.template import SHEETS, subset_rules  # noqa: E402

SAMPLE = config.RAW_DIR / "2023-2024.xlsx"
JUNK = st.one_of(
    st.none(), st.integers(-10**9, 10**9), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30), st.sampled_from(["=SUM(A1:A3)", "1.234", "1,5", "Có", "x", "-", "\u202e", "Tổng cộng",
                                           "Người lập biểu", "NĂM HỌC 2010-2011"]),
    st.datetimes().map(lambda d: d),
)


def _grids() -> dict[str, list[list]]:
    wb = openpyxl.load_workbook(SAMPLE)
    return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}


GRIDS = _grids()


@st.composite
def damaged_workbook(draw):
    grids = {name: [list(r) for r in rows] for name, rows in GRIDS.items()}
    for _ in range(draw(st.integers(1, 12))):
        name = draw(st.sampled_from(sorted(grids)))
        rows = grids[name]
        if not rows:
            continue
        kind = draw(st.sampled_from(["cell", "cell", "cell", "drop_row", "drop_col", "dup_row", "rename"]))
        i = draw(st.integers(0, len(rows) - 1))
        if kind == "cell" and rows[i]:
            rows[i][draw(st.integers(0, len(rows[i]) - 1))] = draw(JUNK)
        elif kind == "drop_row":
            del rows[i]
        elif kind == "drop_col" and rows[i]:
            j = draw(st.integers(0, len(rows[i]) - 1))
            for r in rows:
                if j < len(r):
                    del r[j]
        elif kind == "dup_row":
            rows.insert(i, list(rows[i]))
        elif kind == "rename" and draw(st.booleans()):
            grids[name + draw(st.sampled_from(["_cu", " (2)", ""]))] = grids.pop(name)
    return grids


def _cell(v):
    if isinstance(v, str):  # openpyxl refuses some control characters in cells
        return "".join(ch for ch in v if ch in "\t\n\r" or ord(ch) >= 32)
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return str(v)
    return v


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(grids=damaged_workbook(), byte_damage=st.one_of(st.none(), st.tuples(st.integers(0, 4000), st.binary(min_size=1, max_size=64))))
def test_fuzz_only_success_or_the_documented_error(raw_dir, grids, byte_damage):
    path = raw_dir / "2023-2024.xlsx"
    write_workbook(path, {n: [[_cell(v) for v in r] for r in rows] for n, rows in grids.items()})
    if byte_damage:
        at, junk = byte_damage
        data = path.read_bytes()
        path.write_bytes(data[:at] + junk + data[at + len(junk):])
    try:
        result = clean.clean_workbook(path, Crosswalk.load(raw_dir))
    except DataFileError as err:
        assert err.message_vi and err.message_en and err.file == path.name
        return
    # success: the cleaned tables honour the contract whatever came in
    for spec in SHEETS:
        frame = result.tables[spec.name]
        for col in spec.columns:
            if col.kind == "count" and col.id in frame:
                values = frame[col.id].dropna()
                assert (values >= 0).all() and (values <= clean.MAX_COUNT).all()
        for sub, sup in subset_rules(spec):
            both = frame[[sub, sup]].dropna()
            assert (both[sub] <= both[sup]).all(), (spec.name, sub, sup)
    assert result.tables["Truong"]["ma_truong"].is_unique
    assert result.tables["MamNon"]["ma_truong"].isin(result.tables["Truong"]["ma_truong"]).all()
