"""Shared fixtures: small hand-made workbooks in the raw template, written with openpyxl."""

from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from analysis import config

RAW = config.RAW_DIR


def write_workbook(path: Path, sheets: dict[str, list[list]], extra: dict[str, list[list]] | None = None) -> Path:
    """Write ``{sheet name: rows}`` as an .xlsx (rows are lists of cell values, None for blank)."""
    wb = openpyxl.Workbook(write_only=True)  # streaming: large test workbooks are written quickly
    for name, rows in {**sheets, **(extra or {})}.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


TRUONG_HEADER = ["Mã trường", "Tên trường", "Loại trường", "Loại hình", "Xã/Phường", "Công trình vệ sinh",
                 "Hỗ trợ tâm lý", "CSVC cho HS khuyết tật"]
MAMNON_HEADER = ["Mã trường", "Trẻ 24-59 tháng được đánh giá", "Trẻ 24-59 tháng được đánh giá – Nữ",
                 "Trẻ 24-59 tháng phát triển phù hợp", "Trẻ 24-59 tháng phát triển phù hợp – Nữ"]
PHOTHONG_HEADER = ["Mã trường", "Cấp học", "HS đầu năm", "HS đầu năm – Nữ", "HS lớp đầu cấp", "HS lớp cuối cấp",
                   "HS hoàn thành cấp học", "HS hoàn thành cấp học – Nữ", "HS bỏ học", "HS bỏ học – Nữ"]
XAPHUONG_HEADER = ["Xã/Phường", "Trẻ 5 tuổi", "Trẻ 5 tuổi – Nữ", "Trẻ 5 tuổi học mẫu giáo",
                   "Trẻ 5 tuổi học mẫu giáo – Nữ", "Trẻ 11-14 tuổi", "Trẻ 11-14 tuổi – Nữ",
                   "Trẻ 11-14 tuổi hoàn thành tiểu học", "Trẻ 11-14 tuổi hoàn thành tiểu học – Nữ",
                   "Thanh thiếu niên 15-18 tuổi", "Thanh thiếu niên 15-18 tuổi – Nữ",
                   "TTN 15-18 tuổi tốt nghiệp THCS", "TTN 15-18 tuổi tốt nghiệp THCS – Nữ",
                   "Trẻ khuyết tật có nhu cầu học tập", "Trẻ khuyết tật có nhu cầu học tập – Nữ",
                   "Trẻ khuyết tật được tiếp cận giáo dục", "Trẻ khuyết tật được tiếp cận giáo dục – Nữ"]


def minimal_sheets(year: int = 2023) -> dict[str, list[list]]:
    """A tiny valid workbook: 4 institutions (one TH&THCS) in 2 wards. Totals are hand-checked in tests."""
    return {
        "Truong": [
            ["UBND THỊ XÃ BẾN CÁT"],
            ["PHÒNG GIÁO DỤC VÀ ĐÀO TẠO"],
            [f"DANH SÁCH CƠ SỞ GIÁO DỤC NĂM HỌC {year - 1}-{year}"],
            [],
            TRUONG_HEADER,
            ["MN01", "Trường Mầm non Hoa Sen", "Mầm non", "Công lập", "Mỹ Phước", "Có", "Không", "x"],
            ["MN02", "Nhóm trẻ Thỏ Ngọc", "Nhóm trẻ/Lớp MG độc lập", "Tư thục", "Phường Thới Hòa", "x", None, None],
            ["TH01", "Trường Tiểu học Mỹ Phước", "Tiểu học", "Công lập", "P. Mỹ Phước", 1, 1, 0],
            ["LC01", "Trường TH&THCS Thới Hòa", "TH&THCS", "Công lập", "Thới Hòa", "Có", "Có", "Có"],
            ["Tổng cộng", None, None, None, None, None, None, None],
            [],
            [None, "Người lập biểu", None, None, "TRƯỞNG PHÒNG"],
        ],
        "MamNon": [
            [f"SỐ LIỆU MẦM NON NĂM HỌC {year - 1}-{year}"],
            MAMNON_HEADER,
            ["MN01", 200, 95, 196, 94],
            ["MN02", "30", 14, 29, 14],
            ["Tổng cộng", 230, 109, 225, 108],
        ],
        "PhoThong": [
            PHOTHONG_HEADER,
            ["TH01", "Tiểu học", "1.250", 600, 260, 240, 238, 117, 3, 1],
            ["LC01", "Tiểu học", 400, 190, 80, 78, 77, 38, 0, 0],
            ["LC01", "THCS", 600, 290, 160, 140, 130, 66, 6, 2],
        ],
        "XaPhuong": [
            XAPHUONG_HEADER,
            ["Mỹ Phước", 1000, 480, 990, 476, 4000, 1950, 3900, 1910, 3800, 1850, 3300, 1650, 20, 8, 16, 7],
            ["Thới Hòa", 500, 250, 495, 248, 2000, 990, 1960, 975, 1900, 940, 1700, 860, 4, 2, 3, 2],
            ["Cộng", 1500, 730, 1485, 724, 6000, 2940, 5860, 2885, 5700, 2790, 5000, 2510, 24, 10, 19, 9],
        ],
    }


@pytest.fixture
def raw_dir(tmp_path: Path) -> Path:
    """A raw folder with the project's crosswalk and targets but no workbooks."""
    folder = tmp_path / "raw"
    folder.mkdir()
    for name in (config.CROSSWALK_FILE, config.TARGETS_FILE):
        shutil.copy(RAW / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def sample_processed(tmp_path_factory) -> Path:
    """The whole pipeline (clean, indicators, projections) on the shipped sample, once per test session, into a
    temporary folder: tests never depend on what a previous `make data` left in data/processed/ (a clean
    clone has nothing there). Tests that alter it work on a copy."""
    from analysis.__main__ import main

    folder = tmp_path_factory.mktemp("sample_processed")
    for step in ("clean", "indicators", "projections"):
        assert main([step, "--processed-dir", str(folder)]) == 0
    return folder


def series(values, start=2020, years=None, sid="s", lower=None, upper=None, **extra):
    """A projection input frame (series_id, year, value[, lower, upper, extra columns]) for the engine's tests."""
    years = list(range(start, start + len(values))) if years is None else years
    frame = pd.DataFrame({"series_id": sid, "year": years, "value": values, **extra})
    if lower is not None or upper is not None:
        frame["lower"], frame["upper"] = lower, upper
    return frame
