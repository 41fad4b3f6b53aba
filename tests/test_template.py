"""The template spec, its documentation and the empty workbook say the same thing."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from conftest import write_workbook

from analysis import clean, config, template, template_files
from analysis.geography import Crosswalk


def test_readme_block_is_generated_from_the_template():
    text = (config.RAW_DIR / "README.md").read_text(encoding="utf-8")
    assert template_files.readme_section() in text, "run `python -m analysis template` and commit the README"


def test_every_column_is_documented_in_both_languages():
    for sheet in template.SHEETS:
        for col in sheet.columns:
            assert col.vi and col.en and col.id
            assert col.id == col.id.lower() and " " not in col.id


def test_header_keys_do_not_collide_within_a_sheet():
    for sheet in template.SHEETS:
        seen = {}
        for col in sheet.columns:
            for key in col.header_keys():
                assert seen.setdefault(key, col.id) == col.id, (sheet.name, key, seen[key], col.id)


@pytest.mark.parametrize(
    "text, key", [("Trẻ 5 tuổi – Nữ", "tre5tuoinu"), ("TRE 5 TUOI (NU)", "tre5tuoinu"), ("tre_5_tuoi_nu", "tre5tuoinu"),
                  ("Mã  trường", "matruong"), ("Hòa Lợi", "hoaloi"), ("Đ", "d")],
)
def test_fold(text, key):
    assert template.fold(text) == key


def test_committed_template_workbook_matches_the_spec(tmp_path):
    committed = config.TEMPLATE_DIR / template_files.TEMPLATE_WORKBOOK
    assert committed.exists()
    for sheet in template.SHEETS:
        header = pd.read_excel(committed, sheet_name=sheet.name, engine="calamine", header=None).iloc[0].tolist()
        assert header == [c.vi for c in sheet.columns]


def test_filled_template_cleans(tmp_path):
    """Copy the empty template, fill one example row per sheet from the spec's examples, clean it."""
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(config.RAW_DIR / config.CROSSWALK_FILE, raw)
    sheets = {}
    for sheet in template.SHEETS:
        row = [c.example for c in sheet.columns]
        sheets[sheet.name] = [[c.vi for c in sheet.columns], row]
    # the examples describe a preschool; add the primary school the PhoThong example row belongs to
    primary = dict(zip([c.id for c in template.TRUONG.columns], sheets["Truong"][1]))
    primary.update(ma_truong="BC-TH-001", ten_truong="Trường Tiểu học Mỹ Phước", loai_truong="Tiểu học")
    sheets["Truong"].append(list(primary.values()))
    sheets["PhoThong"][1][0] = "BC-TH-001"
    write_workbook(raw / "2022-2023.xlsx", sheets)
    result = clean.clean_workbook(raw / "2022-2023.xlsx", Crosswalk.load(raw))
    problems = clean.quality_frame(result.problems)
    assert problems.empty, problems[["sheet", "column", "message_en"]]
    assert result.tables["Truong"]["ma_xa_phuong"].tolist() == ["MY_PHUOC", "MY_PHUOC"]
    assert result.tables["PhoThong"]["hs_dau_nam"].tolist() == [1250]
