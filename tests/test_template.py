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


# the definitions a data provider needs (issue 20 §3), and the plan's "trường học" (§2): in data/raw/README.md,
# in the template's help texts (the README's column tables and the notes on the template's header cells) and
# in indicators.yaml, whose texts the report's annex renders
DEFINITIONS = {
    "CT15": ("đạt cả ba", "sức khỏe", "học tập", "tâm lý xã hội"),
    "CT17A": ("Nghị định 20/2014/NĐ-CP", "Thông tư 07/2016/TT-BGDĐT", "không có khả năng theo học chương trình"),
    "CT18A": ("Nghị định 20/2014/NĐ-CP", "không có khả năng theo học chương trình"),
    "CT17B": ("trong hè", "năm học mà học sinh đó không nhập học"),
    "CT18B": ("trong hè",),
    "CT20B": ("Luật Trẻ em 2016", "dưới 16 tuổi", "hòa nhập", "chuyên biệt", "phục hồi chức năng"),
    "CT19": ("trường tiểu học, THCS và TH&THCS", "CT19_MN"),
    "CT20A": ("trường tiểu học, THCS và TH&THCS", "CT20A_MN"),
}


@pytest.mark.parametrize("iid", DEFINITIONS)
def test_definitions_are_where_providers_and_readers_look(iid):
    from analysis.indicators import registry

    spec = registry()[iid]
    annex = " ".join(spec.text(f, "vi") for f in ("definition", "coverage", "caveats"))
    readme = (config.RAW_DIR / "README.md").read_text(encoding="utf-8")
    for phrase in DEFINITIONS[iid]:
        assert phrase in annex, (iid, phrase)
        assert phrase in readme.replace("\n  ", " ").replace("**", ""), (iid, phrase)
    assert spec.text("definition", "en") and spec.text("coverage", "en")


def test_the_template_workbook_carries_the_help_texts():
    import openpyxl

    wb = openpyxl.load_workbook(config.TEMPLATE_DIR / template_files.TEMPLATE_WORKBOOK)
    for sheet in template.SHEETS:
        for cell, col in zip(wb[sheet.name][1], sheet.columns):
            assert (cell.comment.text if cell.comment else "") == (
                f"{col.help_vi}\n\n{col.help_en}" if col.help_vi else ""), (sheet.name, col.id)


def test_crosswalk_cites_the_acts_behind_each_change():
    """Issue 20 §4: the district level ended on 1 July 2025 by Resolution 203/2025/QH15 and Law 72/2025/QH15,
    not by Resolution 1685; units that predate 1685 cite their own founding act (or say it is not recorded);
    rows whose composition is not checked against the resolution's text stay marked so."""
    cw = pd.read_csv(config.RAW_DIR / config.CROSSWALK_FILE, dtype=str, keep_default_na=False)
    ended = cw[(cw["level"] == "district") & (cw["valid_to"] == "2025-06-30")]
    assert len(ended) == 4 and ended["source"].str.contains("203/2025/QH15").all()
    assert ended["source"].str.contains("72/2025/QH15").all() and not ended["source"].str.contains("1685").any()
    older = cw[cw["level"].isin(["district", "ward"]) & ~cw["unit_code"].str.startswith("P_") & (cw["unit_code"] != "BEN_CAT_KH")]
    assert older["source"].str.contains("136/NQ-CP|1012/NQ-UBTVQH15|Chưa ghi văn bản thành lập").all()
    unchecked = {"P_BEN_CAT", "P_LONG_NGUYEN", "P_CHANH_PHU_HOA", "P_TAY_NAM"}
    into = cw[cw["successor_code"].isin(unchecked) | cw["unit_code"].isin(unchecked)]
    assert len(into) == 12 and into["note"].str.contains("chưa đối chiếu").all()
