"""Cleaning: one small hand-made workbook per defect, expected results written by hand."""

from __future__ import annotations

import copy
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
from conftest import minimal_sheets, write_workbook

from analysis import clean
from analysis.__main__ import main
from analysis.errors import DataFileError
from analysis.geography import Crosswalk


def clean_one(raw_dir: Path, sheets: dict, year: int = 2023, extra=None) -> clean.CleanYear:
    path = write_workbook(raw_dir / f"{year - 1}-{year}.xlsx", sheets, extra)
    return clean.clean_workbook(path, Crosswalk.load(raw_dir))


def problems(result: clean.CleanYear) -> pd.DataFrame:
    return clean.quality_frame(result.problems)


def test_minimal_workbook_hand_checked_totals(raw_dir):
    r = clean_one(raw_dir, minimal_sheets())
    assert problems(r).empty
    t = r.tables
    assert list(t["Truong"]["ma_truong"]) == ["MN01", "MN02", "TH01", "LC01"]
    # title rows, blank row, totals row and signature block are not data
    assert len(t["Truong"]) == 4 and len(t["MamNon"]) == 2 and len(t["PhoThong"]) == 3 and len(t["XaPhuong"]) == 2
    assert t["Truong"]["cong_trinh_ve_sinh"].tolist() == [True, True, True, True]  # Có, x, 1, Có
    assert t["Truong"]["ho_tro_tam_ly"].tolist() == [False, False, True, True]  # Không, blank, 1, Có
    assert t["Truong"]["csvc_khuyet_tat"].tolist() == [True, False, False, True]  # x, blank, 0, Có
    assert t["MamNon"]["tre_24_59_danh_gia"].sum() == 230  # "30" as text counts
    assert t["PhoThong"]["hs_dau_nam"].tolist() == [1250, 400, 600]  # "1.250" is one thousand two hundred fifty
    assert t["PhoThong"]["cap_hoc"].tolist() == ["tieu_hoc", "tieu_hoc", "thcs"]  # TH&THCS school has two rows
    assert t["XaPhuong"]["ma_xa_phuong"].tolist() == ["MY_PHUOC", "THOI_HOA"]
    # "P. Mỹ Phước", "Phường Thới Hòa", "Mỹ Phước" all resolve to the crosswalk name
    assert set(t["Truong"]["xa_phuong"]) == {"Phường Mỹ Phước", "Phường Thới Hòa"}
    assert t["PhoThong"]["source_row"].tolist() == [2, 3, 4]
    assert r.year == 2023


def test_header_variants_and_column_order(raw_dir):
    sheets = minimal_sheets()
    # snake_case ids, no accents, other case and punctuation, shuffled columns
    header = ["cap_hoc", "MA TRUONG", "hs_dau_nam", "HS DAU NAM - NU", "Hs lớp đầu cấp", "HS lop cuoi cap",
              "hs hoàn thành cấp học", "HS hoàn thành cấp học (nữ)", "hs_bo_hoc", "HS bỏ học trong đó nữ"]
    rows = [[r[1], r[0], *r[2:]] for r in sheets["PhoThong"][1:]]
    sheets["PhoThong"] = [header, *rows]
    r = clean_one(raw_dir, sheets)
    assert problems(r).empty
    assert r.tables["PhoThong"]["hs_bo_hoc_nu"].tolist() == [1, 0, 2]
    assert r.tables["PhoThong"]["ma_truong"].tolist() == ["TH01", "LC01", "LC01"]


def test_stray_spaces_and_nfd_text(raw_dir):
    sheets = minimal_sheets()
    nfd = copy.deepcopy(sheets)
    for name, rows in nfd.items():
        nfd[name] = [[unicodedata.normalize("NFD", v) if isinstance(v, str) else v for v in row] for row in rows]
    nfd["Truong"][5][0] = "  MN01 "
    nfd["Truong"][5][1] = " Trường  Mầm non   Hoa Sen "
    nfd["MamNon"][2][0] = "MN01  "
    r = clean_one(raw_dir, nfd)
    assert problems(r).empty
    assert r.tables["Truong"]["ten_truong"].iloc[0] == "Trường Mầm non Hoa Sen"
    assert unicodedata.is_normalized("NFC", r.tables["Truong"]["xa_phuong"].iloc[0])
    assert r.tables["MamNon"]["ma_truong"].tolist() == ["MN01", "MN02"]
    assert r.tables["Truong"]["loai_truong"].tolist() == ["mam_non", "doc_lap", "tieu_hoc", "th_thcs"]


def test_girls_columns_are_optional(raw_dir):
    sheets = minimal_sheets()
    sheets["MamNon"] = [[c for j, c in enumerate(row) if j not in (2, 4)] for row in sheets["MamNon"]]
    r = clean_one(raw_dir, sheets)
    assert problems(r).empty
    assert r.tables["MamNon"]["tre_24_59_danh_gia_nu"].isna().all()
    assert r.tables["MamNon"]["tre_24_59_phu_hop"].tolist() == [196, 29]


def test_two_row_header_and_column_number_row(raw_dir):
    sheets = minimal_sheets()
    sheets["MamNon"] = [
        ["Mã trường", "Trẻ 24-59 tháng được đánh giá", None, "Trẻ 24-59 tháng phát triển phù hợp", None],
        [None, "Tổng số", "Nữ", "Tổng số", "Nữ"],
        ["(1)", "(2)", "(3)", "(4)", "(5)"],
        ["MN01", 200, 95, 196, 94],
        ["MN02", 30, 14, 29, 14],
    ]
    r = clean_one(raw_dir, sheets)
    assert problems(r).empty
    assert r.tables["MamNon"]["tre_24_59_phu_hop_nu"].tolist() == [94, 14]


def test_totals_row_mismatch_is_logged_rows_are_used(raw_dir):
    sheets = minimal_sheets()
    sheets["MamNon"][-1] = ["Tổng cộng", 231, 109, 225, 108]  # 200 + 30 = 230, not 231
    r = clean_one(raw_dir, sheets)
    q = problems(r)
    assert q[["code", "severity", "sheet", "row", "cell", "column_id"]].values.tolist() == [
        ["totals_mismatch", "warning", "MamNon", 5, "B5", "tre_24_59_danh_gia"]]
    assert "231" in q["message_en"].iloc[0] and "230" in q["message_en"].iloc[0]
    assert r.tables["MamNon"]["tre_24_59_danh_gia"].sum() == 230


@pytest.mark.parametrize(
    "cell, code",
    [("abc", "not_number"), (-3, "negative"), (2.5, "fraction"), ("2,5", "fraction"), ("", "blank"),
     (pd.Timestamp("2024-01-05").to_pydatetime(), "date"), (5_000_000, "too_large")],
)
def test_bad_count_is_excluded_and_located(raw_dir, cell, code):
    sheets = minimal_sheets()
    sheets["PhoThong"][1][8] = cell  # TH01 HS bỏ học, Excel cell I2
    r = clean_one(raw_dir, sheets)
    q = problems(r)
    hit = q[q["code"] == code]
    assert len(hit) == 1, q
    assert hit.iloc[0][["sheet", "row", "cell", "column", "ma_truong"]].tolist() == [
        "PhoThong", 2, "I2", "HS bỏ học", "TH01"]
    assert pd.isna(r.tables["PhoThong"]["hs_bo_hoc"].iloc[0])
    # the girls' count of the same row stays (1 <= missing total is not checked, not guessed either)
    assert r.tables["PhoThong"]["hs_bo_hoc_nu"].iloc[0] == 1


@pytest.mark.parametrize(
    "sheet, row, col, value, column_id",
    [
        ("MamNon", 2, 4, 97, "tre_24_59_phu_hop_nu"),  # girls on track > girls assessed (95)? and > all on track
        ("MamNon", 2, 3, 201, "tre_24_59_phu_hop"),  # on track > assessed
        ("PhoThong", 1, 6, 241, "hs_hoan_thanh"),  # completers > final grade
        ("PhoThong", 1, 3, 1300, "hs_dau_nam_nu"),  # girls > all
        ("XaPhuong", 1, 15, 21, "tkt_tiep_can"),  # accessing > needing
    ],
)
def test_subset_larger_than_total_is_excluded(raw_dir, sheet, row, col, value, column_id):
    sheets = minimal_sheets()
    sheets[sheet][row][col] = value
    r = clean_one(raw_dir, sheets)
    q = problems(r)
    hit = q[(q["code"] == "subset_exceeds_total") & (q["column_id"] == column_id)]
    assert len(hit) == 1, q
    data_row = row - (1 if sheet == "MamNon" else 0) - 1  # MamNon has a title row
    assert pd.isna(r.tables[sheet][column_id].iloc[data_row])


def test_boys_counts_out_of_order_are_logged(raw_dir):
    """Every entered count passes its check, but the boys' (all minus girls) do not: Mỹ Phước's children 11-14
    are 3000, 1507 of them girls (boys 1493); 2950 completed primary, 1438 girls (boys 1512 > 1493)."""
    sheets = minimal_sheets()
    sheets["XaPhuong"][1][5:9] = [3000, 1507, 2950, 1438]
    sheets["XaPhuong"][3][5:9] = [5000, 2497, 4910, 2413]  # the totals row follows
    r = clean_one(raw_dir, sheets)
    q = problems(r)
    assert q[["sheet", "row", "cell", "severity", "code", "column_id"]].values.tolist() == [
        ["XaPhuong", 2, "I2", "warning", "boys_subset_exceeds_total", "tre_11_14_htth_nu"]]
    for text in q["message_vi"].iloc[0], q["message_en"].iloc[0]:
        assert "2950 − 1438 = 1512" in text and "3000 − 1507 = 1493" in text
    assert "Trẻ 11-14 tuổi hoàn thành tiểu học – Nữ" in q["message_vi"].iloc[0]
    # the entered counts are kept: which of the four is wrong cannot be told (the indicators drop the boys)
    assert r.tables["XaPhuong"].loc[0, ["tre_11_14", "tre_11_14_nu", "tre_11_14_htth", "tre_11_14_htth_nu"]].tolist() == [
        3000, 1507, 2950, 1438]


def test_row_of_zeros_is_logged(raw_dir):
    sheets = minimal_sheets()
    sheets["PhoThong"][2][2:] = [0] * 8  # LC01 primary: every count 0
    sheets["XaPhuong"][2][1:] = ["-"] * 16  # Thới Hòa: dashes are zeros
    del sheets["XaPhuong"][3]  # (no totals row)
    q = problems(clean_one(raw_dir, sheets))
    assert q[["sheet", "cell", "severity", "code"]].values.tolist() == [
        ["PhoThong", "C3", "warning", "all_counts_zero"], ["XaPhuong", "B3", "warning", "all_counts_zero"]]


def test_duplicate_school_code_excludes_every_copy(raw_dir):
    sheets = minimal_sheets()
    sheets["Truong"][6][0] = "MN01"  # MN02 -> MN01: two rows claim MN01
    r = clean_one(raw_dir, sheets)
    q = problems(r)
    assert (q["code"] == "duplicate_key").sum() == 2
    assert "MN01" not in set(r.tables["Truong"]["ma_truong"])
    # its MamNon row now refers to no institution: excluded and logged too
    assert (q["code"] == "unknown_school").sum() == 2  # MN01 and the MamNon row still coded MN02
    assert r.tables["MamNon"].empty


def test_row_referring_to_unknown_school(raw_dir):
    sheets = minimal_sheets()
    sheets["PhoThong"][3][0] = "XX99"
    r = clean_one(raw_dir, sheets)
    q = problems(r)
    hit = q[q["code"] == "unknown_school"]
    assert hit[["sheet", "row", "value"]].values.tolist() == [["PhoThong", 4, "XX99"]]
    assert len(r.tables["PhoThong"]) == 2
    # and LC01 now has no THCS row: it did not report
    assert q[q["code"] == "not_reported"]["ma_truong"].tolist() == ["LC01"]


def test_unknown_ward(raw_dir):
    sheets = minimal_sheets()
    sheets["Truong"][7][4] = "Mỹ Phướcc"
    sheets["XaPhuong"][2][0] = "Phường Atlantis"
    r = clean_one(raw_dir, sheets)
    q = problems(r)
    wards = q[q["code"] == "unknown_ward"]
    assert wards[["sheet", "row", "cell", "value"]].values.tolist() == [
        ["Truong", 8, "E8", "Mỹ Phướcc"], ["XaPhuong", 3, "A3", "Phường Atlantis"]]
    assert "Xã/phường không có trong danh mục" in wards["message_vi"].iloc[0]
    # the school stays (it is in the district) without a ward; the ward row cannot be placed
    assert pd.isna(r.tables["Truong"].set_index("ma_truong").at["TH01", "ma_xa_phuong"])
    assert r.tables["XaPhuong"]["ma_xa_phuong"].tolist() == ["MY_PHUOC"]


def test_ward_names_follow_the_school_year(raw_dir):
    # An Điền was a commune until 30 April 2024 and a ward after; the 2025 merger created new wards
    sheets = minimal_sheets(2026)
    sheets["Truong"][5][4] = "Phường Hòa Lợi"
    sheets["Truong"][6][4] = "Tân Định"  # no longer exists in 2025-2026
    r = clean_one(raw_dir, sheets, year=2026)
    q = problems(r)
    assert r.tables["Truong"]["ma_xa_phuong"].iloc[0] == "P_HOA_LOI"
    outside = q[(q["code"] == "unknown_ward") & (q["row"] == 7)]
    assert "2025-2026" in outside["message_vi"].iloc[0]
    r2 = clean_one(raw_dir, {**minimal_sheets(2024), "XaPhuong": [minimal_sheets()["XaPhuong"][0],
                                                                   ["Xã An Điền", *([1] * 16)]]}, year=2024)
    assert r2.tables["XaPhuong"]["ma_xa_phuong"].tolist() == ["AN_DIEN"]


def test_unreadable_yes_no_and_unknown_category(raw_dir):
    sheets = minimal_sheets()
    sheets["Truong"][5][5] = "đang xây"
    sheets["Truong"][6][2] = "Trường quốc tế"
    r = clean_one(raw_dir, sheets)
    q = problems(r).set_index("code")
    assert q.loc["not_yesno", "cell"] == "F6"
    assert q.loc["unknown_category", "cell"] == "C7"
    t = r.tables["Truong"]
    assert pd.isna(t["cong_trinh_ve_sinh"].iloc[0]) and pd.isna(t["loai_truong"].iloc[1])


# --- files that cannot be used -----------------------------------------------------------------------------

def test_missing_sheet_message(raw_dir):
    sheets = minimal_sheets()
    del sheets["XaPhuong"]
    with pytest.raises(DataFileError) as err:
        clean_one(raw_dir, sheets)
    e = err.value
    assert e.code == "missing_sheet" and e.file == "2022-2023.xlsx" and e.sheet == "XaPhuong"
    assert "Thiếu sheet" in str(e) and "Missing sheet" in str(e)


def test_missing_column_message(raw_dir):
    sheets = minimal_sheets()
    sheets["PhoThong"] = [[c for j, c in enumerate(r) if j != 8] for r in sheets["PhoThong"]]  # drop HS bỏ học
    with pytest.raises(DataFileError) as err:
        clean_one(raw_dir, sheets)
    e = err.value
    assert (e.code, e.sheet, e.row, e.column) == ("missing_column", "PhoThong", 1, "HS bỏ học")
    assert "Thiếu cột bắt buộc: 'HS bỏ học'" in e.message_vi and "'Dropouts'" in e.message_en


def test_non_numeric_count_message_names_the_cell(raw_dir):
    sheets = minimal_sheets()
    sheets["XaPhuong"][1][1] = "một nghìn"
    r = clean_one(raw_dir, sheets)
    hit = problems(r).query("code == 'not_number'").iloc[0]
    assert (hit["file"], hit["sheet"], hit["row"], hit["cell"], hit["column"]) == (
        "2022-2023.xlsx", "XaPhuong", 2, "B2", "Trẻ 5 tuổi")
    assert hit["message_vi"] == "Không phải là số." and hit["message_en"] == "Not a number."


def test_year_inside_disagrees_with_file_name(raw_dir):
    sheets = minimal_sheets(2022)  # title says 2021-2022
    with pytest.raises(DataFileError) as err:
        clean_one(raw_dir, sheets, year=2023)
    assert err.value.code == "year_mismatch" and "2021-2022" in err.value.message_vi


@pytest.mark.parametrize("content, code", [(b"", "file_empty"), (b"ma_truong,ten\nA,B\n", "file_not_xlsx"),
                                           (b"%PDF-1.4 ...", "file_not_xlsx"), (b"PK\x03\x04garbage", "file_unreadable")])
def test_unreadable_files(raw_dir, content, code):
    path = raw_dir / "2022-2023.xlsx"
    path.write_bytes(content)
    with pytest.raises(DataFileError) as err:
        clean.clean_workbook(path, Crosswalk.load(raw_dir))
    assert err.value.code == code and err.value.file == "2022-2023.xlsx"


# --- the command ---------------------------------------------------------------------------------------------

def test_cli_clean_writes_tables_and_quality(raw_dir, tmp_path, capsys):
    sheets = minimal_sheets()
    sheets["MamNon"][-1] = ["Tổng cộng", 231, 109, 225, 108]
    write_workbook(raw_dir / "2022-2023.xlsx", sheets)
    out = tmp_path / "processed"
    assert main(["clean", "--raw-dir", str(raw_dir), "--processed-dir", str(out)]) == 0
    for name in ("truong", "mam_non", "pho_thong", "xa_phuong", "quality", "files"):
        assert (out / f"{name}.parquet").exists()
    q = pd.read_csv(out / "quality.csv", encoding="utf-8-sig")
    assert list(q.columns[:10]) == ["year", "file", "sheet", "row", "column", "cell", "value", "severity", "code",
                                    "message_vi"]
    assert q["code"].tolist() == ["totals_mismatch"]
    assert not list(out.glob(".*tmp"))


def test_cli_failed_file_leaves_previous_outputs(raw_dir, tmp_path, capsys):
    out = tmp_path / "processed"
    write_workbook(raw_dir / "2022-2023.xlsx", minimal_sheets())
    assert main(["clean", "--raw-dir", str(raw_dir), "--processed-dir", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = minimal_sheets(2024)
    del bad["MamNon"]
    write_workbook(raw_dir / "2023-2024.xlsx", bad)
    assert main(["clean", "--raw-dir", str(raw_dir), "--processed-dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert "2023-2024.xlsx" in err and "MamNon" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_cli_one_year_keeps_the_others(raw_dir, tmp_path):
    out = tmp_path / "processed"
    write_workbook(raw_dir / "2022-2023.xlsx", minimal_sheets(2023))
    write_workbook(raw_dir / "2023-2024.xlsx", minimal_sheets(2024))
    assert main(["clean", "--raw-dir", str(raw_dir), "--processed-dir", str(out)]) == 0
    sheets = minimal_sheets(2024)
    sheets["MamNon"][2][1] = 300
    write_workbook(raw_dir / "2023-2024.xlsx", sheets)
    assert main(["clean", "--year", "2024", "--raw-dir", str(raw_dir), "--processed-dir", str(out)]) == 0
    mam = pd.read_parquet(out / "mam_non.parquet")
    assert mam.groupby("year")["tre_24_59_danh_gia"].sum().to_dict() == {2023: 230, 2024: 330}
    assert sorted(pd.read_parquet(out / "files.parquet")["year"]) == [2023, 2024]


def test_cli_no_workbooks_is_a_clear_error(raw_dir, tmp_path, capsys):
    assert main(["clean", "--raw-dir", str(raw_dir), "--processed-dir", str(tmp_path / "p")]) == 2
    assert "No school-year workbook" in capsys.readouterr().err
