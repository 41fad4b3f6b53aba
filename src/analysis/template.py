"""The raw-data template: the contract with the people who fill the workbooks (DESIGN §4).

One source for the reader (header matching), the cleaner (types and constraints), ``data/raw/README.md``,
the empty template workbook and the sample generator: change a column here and all of them follow.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Literal

FEMALE_SUFFIX = "_nu"


class _FoldTable(dict):
    """Code point -> its folded text ('ệ' -> 'e', 'Đ' -> 'd', ' ' -> ''), filled on first use."""

    def __missing__(self, code: int) -> str:
        s = unicodedata.normalize("NFD", chr(code)).replace("đ", "d").replace("Đ", "D")
        folded = re.sub(r"[^0-9a-z]+", "", "".join(ch for ch in s if not unicodedata.combining(ch)).lower())
        self[code] = folded
        return folded


_FOLD = _FoldTable()


def fold(text: object) -> str:
    """Case-, accent-, spacing- and punctuation-insensitive key: 'Trẻ 5 tuổi – Nữ' -> 'tre5tuoinu'; NFC and NFD
    alike (real exports mix them), in one ``str.translate`` as it runs for every key cell."""
    return str(text).translate(_FOLD)


@dataclass(frozen=True)
class Category:
    code: str
    vi: str
    en: str
    aliases: tuple[str, ...] = ()

    def keys(self) -> set[str]:
        return {fold(x) for x in (self.code, self.vi, self.en, *self.aliases)}


@dataclass(frozen=True)
class Column:
    id: str
    vi: str
    en: str
    kind: Literal["code", "text", "category", "yesno", "count"]
    required: bool = True
    aliases: tuple[str, ...] = ()
    categories: tuple[Category, ...] = ()
    subset_of: str | None = None  # this count can never exceed that one (same row)
    female_of: str | None = None  # this is the girls' part of that count
    example: object = None
    help_vi: str = ""
    help_en: str = ""

    def header_keys(self) -> set[str]:
        """Every folded header text that names this column."""
        names = [self.vi, self.en, self.id, *self.aliases]
        if self.female_of is not None:  # 'X (nữ)' and 'X - trong đó nữ' fold to the same keys as these
            names += [self.vi.removesuffix(" – Nữ") + girls for girls in (" nữ", " trong đó nữ")]
        return {fold(n) for n in names}


@dataclass(frozen=True)
class Sheet:
    name: str
    vi: str
    en: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    aliases: tuple[str, ...] = ()
    help_vi: str = ""
    help_en: str = ""
    by_id: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {c.id: c for c in self.columns})

    def column(self, column_id: str) -> Column:
        return self.by_id[column_id]

    @property
    def required(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.required)

    def name_keys(self) -> set[str]:
        return {fold(n) for n in (self.name, self.vi, self.en, *self.aliases)}


# --- categories ---------------------------------------------------------------------------------------
SCHOOL_TYPES = (
    Category("nha_tre", "Nhà trẻ", "Crèche"),
    Category("mau_giao", "Mẫu giáo", "Kindergarten", ("Trường mẫu giáo",)),
    Category("mam_non", "Mầm non", "Preschool (crèche and kindergarten)", ("Trường mầm non",)),
    Category("doc_lap", "Nhóm trẻ/Lớp MG độc lập", "Independent childcare group or kindergarten class",
             ("Nhóm trẻ, lớp mẫu giáo độc lập", "Nhóm trẻ/Lớp mẫu giáo độc lập", "Nhóm trẻ độc lập",
              "Lớp mẫu giáo độc lập", "Lớp MG độc lập", "Nhóm lớp độc lập", "Cơ sở GDMN độc lập")),
    Category("tieu_hoc", "Tiểu học", "Primary school", ("TH", "Trường tiểu học")),
    Category("thcs", "THCS", "Lower-secondary school", ("Trung học cơ sở", "Trường THCS")),
    Category("th_thcs", "TH&THCS", "Primary and lower-secondary school",
             ("TH và THCS", "TH-THCS", "Tiểu học và THCS", "Tiểu học và trung học cơ sở", "Liên cấp TH&THCS")),
)
PRESCHOOL_TYPES = frozenset({"nha_tre", "mau_giao", "mam_non", "doc_lap"})
PRIMARY_TYPES = frozenset({"tieu_hoc", "th_thcs"})
LOWER_SECONDARY_TYPES = frozenset({"thcs", "th_thcs"})

OWNERSHIP_TYPES = (
    Category("cong_lap", "Công lập", "Public", ("CL", "Trường công lập")),
    Category("tu_thuc", "Tư thục", "Private", ("TT", "Ngoài công lập", "NCL")),
    Category("dan_lap", "Dân lập", "Community-founded", ("DL",)),
)

SCHOOL_LEVELS = (
    Category("tieu_hoc", "Tiểu học", "Primary", ("TH", "Cấp 1", "Cấp I")),
    Category("thcs", "THCS", "Lower secondary", ("Trung học cơ sở", "Cấp 2", "Cấp II")),
)

YES_VALUES = frozenset(fold(v) for v in ("có", "x", "1", "yes", "y", "true", "đạt", "v"))
YES_MARKS = frozenset({"✓", "✔", "√", "☑"})  # marks fold to nothing, so they are matched as written
NO_VALUES = frozenset(fold(v) for v in ("không", "", "0", "no", "n", "false", "chưa", "chưa có", "k"))

# --- columns ------------------------------------------------------------------------------------------
MA_TRUONG = Column("ma_truong", "Mã trường", "Institution code", "code", example="BC-MN-001",
                   aliases=("Mã đơn vị", "Mã CSGD", "Mã cơ sở giáo dục", "Mã số trường", "School code"),
                   help_vi="Mã ổn định của cơ sở giáo dục, không đổi qua các năm, không trùng.",
                   help_en="Stable code of the institution, the same every year, unique.")

WARD_NAME = Column("xa_phuong", "Xã/Phường", "Ward or commune", "text", example="Mỹ Phước",
                   aliases=("Xã, phường", "Phường/Xã", "Phường, xã", "Đơn vị hành chính", "Địa bàn", "Ward"))

WARD_CODE = Column(
    "ma_xa_phuong", "Mã xã/phường", "Ward code", "code", required=False,
    aliases=("Mã đơn vị hành chính", "Mã ĐVHC", "Ward code"), example="MY_PHUOC",
    help_vi="Không bắt buộc. Mã trong don_vi_hanh_chinh.csv; khi có, dùng mã thay cho tên (cần khi tên trùng).",
    help_en="Optional. Code from don_vi_hanh_chinh.csv; when given it is used instead of the name "
            "(needed where names repeat, e.g. a whole province).")


def _count(cid: str, vi: str, en: str, *, female: bool, example: int = 0, aliases: tuple[str, ...] = (), **more):
    """A count column (``more``: its other fields) and, when ``female``, its optional girls' column."""
    total = Column(cid, vi, en, "count", example=example, aliases=aliases, **more)
    if not female:
        return (total,)
    return total, Column(cid + FEMALE_SUFFIX, f"{vi} – Nữ", f"{en} – girls", "count", required=False, subset_of=cid,
                         female_of=cid, example=round(example * 0.48), aliases=tuple(f"{a} – Nữ" for a in aliases),
                         help_vi="Không bắt buộc. Số nữ trong cột trên.",
                         help_en="Optional. Girls among the column above.")


def _yesno(cid: str, vi: str, en: str, help_vi: str, help_en: str, aliases: tuple[str, ...] = ()):
    return Column(cid, vi, en, "yesno", aliases=aliases, example="Có", help_vi=help_vi, help_en=help_en)


TRUONG = Sheet(
    "Truong", "Danh sách cơ sở giáo dục", "Institutions", key=("ma_truong",),
    aliases=("Trường", "Danh sách trường", "Schools"),
    help_vi="Mỗi dòng một cơ sở giáo dục (mầm non, tiểu học, THCS).",
    help_en="One row per institution (preschool, primary, lower secondary).",
    columns=(
        MA_TRUONG,
        Column("ten_truong", "Tên trường", "Institution name", "text", example="Trường Mầm non Hoa Sen",
               aliases=("Tên đơn vị", "Tên cơ sở giáo dục", "Tên CSGD", "School name")),
        Column("loai_truong", "Loại trường", "Institution type", "category", categories=SCHOOL_TYPES,
               aliases=("Loại hình trường", "Cấp trường", "School type"), example="Mầm non"),
        Column("loai_hinh", "Loại hình", "Ownership", "category", categories=OWNERSHIP_TYPES,
               aliases=("Loại hình sở hữu", "Công lập/Tư thục"), example="Công lập"),
        replace(WARD_NAME, help_vi="Tên xã/phường nơi trường đặt trụ sở, đúng tên của năm học đó.",
                help_en="Ward or commune of the institution, named as in that school year."),
        WARD_CODE,
        _yesno("cong_trinh_ve_sinh", "Công trình vệ sinh", "Sanitation facilities",
               "Có công trình vệ sinh dành cho trẻ em/học sinh.", "Has sanitation facilities for children.",
               aliases=("Có công trình vệ sinh", "CTVS", "Nhà vệ sinh")),
        _yesno("ho_tro_tam_ly", "Hỗ trợ tâm lý", "Psychological support",
               "Có dịch vụ hỗ trợ tâm lý / tư vấn học đường. Ghi cho mọi cơ sở; Chỉ tiêu 19 tính trên các trường "
               "tiểu học, THCS, TH&THCS (\"trường học\"), cơ sở mầm non được thống kê riêng.",
               "Has a psychological support or school counselling service. Given for every institution; Chỉ tiêu 19 "
               "counts primary, lower-secondary and TH&THCS schools, preschools are shown apart.",
               aliases=("Có dịch vụ hỗ trợ tâm lý", "Tư vấn tâm lý", "Tư vấn học đường")),
        _yesno("csvc_khuyet_tat", "CSVC cho HS khuyết tật", "Facilities for students with disabilities",
               "Có cơ sở hạ tầng và tài liệu phù hợp với học sinh khuyết tật. Ghi cho mọi cơ sở; Chỉ tiêu 20 tính "
               "trên các trường tiểu học, THCS, TH&THCS (\"trường học\", như Chỉ tiêu 19), cơ sở mầm non (kể cả "
               "nhóm trẻ, lớp mẫu giáo độc lập) được thống kê riêng.",
               "Has infrastructure and materials suitable for students with disabilities. Given for every "
               "institution; Chỉ tiêu 20 counts primary, lower-secondary and TH&THCS schools (as Chỉ tiêu 19), "
               "preschools (independent groups included) are shown apart.",
               aliases=("Cơ sở vật chất cho học sinh khuyết tật", "CSVC khuyết tật", "CSVC cho HSKT")),
    ),
)

MAM_NON = Sheet(
    "MamNon", "Số liệu mầm non", "Preschool data", key=("ma_truong",),
    aliases=("Mầm non", "Mam non", "Preschool"),
    help_vi="Mỗi dòng một cơ sở giáo dục mầm non.", help_en="One row per preschool institution.",
    columns=(
        MA_TRUONG,
        *_count("tre_24_59_danh_gia", "Trẻ 24-59 tháng được đánh giá", "Children 24-59 months assessed",
                female=True, example=180,
                help_vi="Số trẻ 24-59 tháng tuổi (tuổi tại lần đánh giá cuối năm học) được đánh giá đủ ba mặt: "
                        "sức khỏe, học tập, tâm lý xã hội.",
                help_en="Children aged 24-59 months (at the end-of-year assessment) assessed in all three domains: "
                        "health, learning, psychosocial."),
        *_count("tre_24_59_phu_hop", "Trẻ 24-59 tháng phát triển phù hợp",
                "Children 24-59 months developmentally on track", female=True, example=178,
                subset_of="tre_24_59_danh_gia",
                help_vi="Trong số được đánh giá, số trẻ đạt cả ba mặt: sức khỏe (không suy dinh dưỡng thể nhẹ cân, "
                        "thấp còi ở lần cân đo cuối năm), học tập (đạt chỉ số nhận thức, ngôn ngữ của độ tuổi), tâm "
                        "lý xã hội (đạt chỉ số tình cảm, kỹ năng xã hội của độ tuổi). Chưa đạt một mặt thì không tính.",
                help_en="Of those assessed, children on track in all three: health (neither underweight nor stunted "
                        "at the year's last measuring), learning (the age's cognitive and language indicators), "
                        "psychosocial (the age's emotional and social indicators). Off track in one: not counted."),
    ),
)

PHO_THONG = Sheet(
    "PhoThong", "Số liệu tiểu học và THCS", "Primary and lower-secondary data", key=("ma_truong", "cap_hoc"),
    aliases=("Phổ thông", "Pho thong", "Tiểu học - THCS", "Schools data"),
    help_vi="Mỗi dòng một trường và một cấp học (trường TH&THCS có hai dòng).",
    help_en="One row per school and level (a TH&THCS school has two rows).",
    columns=(
        MA_TRUONG,
        Column("cap_hoc", "Cấp học", "Level", "category", categories=SCHOOL_LEVELS, example="Tiểu học"),
        *_count("hs_dau_nam", "HS đầu năm", "Enrolment at start of year", female=True, example=1250,
                aliases=("Học sinh đầu năm", "Số HS đầu năm", "Tổng số học sinh đầu năm"),
                help_vi="Tổng số học sinh của cấp học vào đầu năm học.",
                help_en="Pupils enrolled in the level at the start of the school year."),
        *_count("hs_lop_dau_cap", "HS lớp đầu cấp", "Entry-grade enrolment", female=False, example=260,
                subset_of="hs_dau_nam", aliases=("HS lớp 1/lớp 6", "Học sinh lớp đầu cấp"),
                help_vi="Học sinh lớp 1 (tiểu học) hoặc lớp 6 (THCS) đầu năm.",
                help_en="Grade 1 (primary) or grade 6 (lower secondary) pupils at the start of the year."),
        *_count("hs_lop_cuoi_cap", "HS lớp cuối cấp", "Final-grade enrolment", female=False, example=240,
                subset_of="hs_dau_nam", aliases=("HS lớp 5/lớp 9", "Học sinh lớp cuối cấp"),
                help_vi="Học sinh lớp 5 (tiểu học) hoặc lớp 9 (THCS).",
                help_en="Grade 5 (primary) or grade 9 (lower secondary) pupils."),
        *_count("hs_hoan_thanh", "HS hoàn thành cấp học", "Completers", female=True, example=238,
                subset_of="hs_lop_cuoi_cap",
                aliases=("HS hoàn thành chương trình", "HS tốt nghiệp", "Học sinh hoàn thành cấp học"),
                help_vi="Học sinh hoàn thành chương trình tiểu học / tốt nghiệp THCS cuối năm học.",
                help_en="Pupils who completed primary / obtained the lower-secondary certificate at year end."),
        *_count("hs_bo_hoc", "HS bỏ học", "Dropouts", female=True, example=2, subset_of="hs_dau_nam",
                aliases=("Học sinh bỏ học", "Số HS bỏ học"),
                help_vi="Học sinh bỏ học của năm học: học sinh có tên đầu năm thôi học trước khi hết năm học, cộng "
                        "học sinh thôi học trong hè trước năm học (học năm trước, không nhập học năm này). Không tính "
                        "học sinh chuyển trường, học sinh đã hoàn thành lớp 5/lớp 9 không học tiếp.",
                help_en="Dropouts of the year: pupils enrolled at the start who left before the year's end, plus "
                        "pupils who left during the summer before it (enrolled last year, not this year). Transfers "
                        "and pupils who completed grade 5/grade 9 and did not continue are not dropouts."),
    ),
)

_PCGD_VI = ("không tính người khuyết tật không có khả năng theo học chương trình (như khi xét công nhận phổ cập, "
            "Nghị định 20/2014/NĐ-CP, Thông tư 07/2016/TT-BGDĐT).")
_PCGD_EN = ("people with disabilities who cannot follow the programme are left out (as for the universal-education "
            "standards, Decree 20/2014/NĐ-CP, Circular 07/2016/TT-BGDĐT).")

XA_PHUONG = Sheet(
    "XaPhuong", "Số liệu phổ cập theo xã/phường", "Universal-education survey by ward",
    key=("xa_phuong",), aliases=("Xã phường", "Phường xã", "Xa phuong", "Wards"),
    help_vi="Mỗi dòng một xã/phường, số liệu điều tra phổ cập giáo dục (trẻ cư trú trên địa bàn).",
    help_en="One row per ward or commune, from the universal-education survey (resident children).",
    columns=(
        WARD_NAME,
        WARD_CODE,
        Column("don_vi_cu", "Đơn vị cũ", "Former unit", "text", required=False,
               aliases=("Xã/phường cũ", "Đơn vị trước sắp xếp", "Former ward"), example="",
               help_vi="Không bắt buộc. Chỉ cho xã/phường mới (sau sắp xếp 01/7/2025) có cả phần ngoài địa bàn theo "
                       "dõi của Kế hoạch: ghi mỗi phần trên một dòng, cùng tên xã/phường mới, tên đơn vị cũ ở cột "
                       "này và số liệu của phần đó. Nhờ vậy các chỉ tiêu theo dân số được tính lại trên đúng địa "
                       "bàn cũ và chuỗi số liệu không bị đứt gãy.",
               help_en="Optional. Only for a new ward (after the 1 July 2025 reorganisation) that includes "
                       "territory outside the plan's: one row per part, the new ward's name, the former unit "
                       "here and that part's counts. The population-based indicators are then restated on the "
                       "former territory and their series go on."),
        *_count("tre_5_tuoi", "Trẻ 5 tuổi", "Resident 5-year-olds", female=True, example=1400),
        *_count("tre_5_tuoi_hoc_mg", "Trẻ 5 tuổi học mẫu giáo", "5-year-olds in kindergarten", female=True,
                example=1392, subset_of="tre_5_tuoi", aliases=("Trẻ 5 tuổi ra lớp", "Trẻ 5 tuổi đi học MG")),
        *_count("tre_11_14", "Trẻ 11-14 tuổi", "Resident children 11-14", female=True, example=5200,
                help_vi="Trẻ 11-14 tuổi cư trú, như hồ sơ phổ cập giáo dục: " + _PCGD_VI,
                help_en="Resident children 11-14, as in the universal-education records: " + _PCGD_EN),
        *_count("tre_11_14_htth", "Trẻ 11-14 tuổi hoàn thành tiểu học", "Children 11-14 who completed primary",
                female=True, example=5090, subset_of="tre_11_14", aliases=("Trẻ 11-14 tuổi HTCTTH",)),
        *_count("ttn_15_18", "Thanh thiếu niên 15-18 tuổi", "Resident youth 15-18", female=True, example=4800,
                aliases=("TTN 15-18 tuổi",),
                help_vi="Thanh thiếu niên 15-18 tuổi cư trú, như hồ sơ phổ cập giáo dục: " + _PCGD_VI,
                help_en="Resident youth 15-18, as in the universal-education records: " + _PCGD_EN),
        *_count("ttn_15_18_tn_thcs", "TTN 15-18 tuổi tốt nghiệp THCS", "Youth 15-18 with lower-secondary certificate",
                female=True, example=4300, subset_of="ttn_15_18",
                aliases=("Thanh thiếu niên 15-18 tuổi tốt nghiệp THCS",)),
        *_count("tkt_nhu_cau", "Trẻ khuyết tật có nhu cầu học tập", "Children with disabilities needing education",
                female=True, example=25, aliases=("TKT có nhu cầu học tập",),
                help_vi="Trẻ khuyết tật cư trú có nhu cầu học tập; trẻ em theo Luật Trẻ em 2016: dưới 16 tuổi.",
                help_en="Resident children with disabilities who need education; children as in the Law on "
                        "Children 2016: under 16."),
        *_count("tkt_tiep_can", "Trẻ khuyết tật được tiếp cận giáo dục",
                "Children with disabilities accessing education", female=True, example=21, subset_of="tkt_nhu_cau",
                aliases=("TKT được tiếp cận giáo dục",),
                help_vi="Trong số trên, trẻ học hòa nhập ở cơ sở mầm non, phổ thông, học ở trường, lớp chuyên biệt "
                        "(kể cả bán hòa nhập), hoặc được hỗ trợ giáo dục, phục hồi chức năng phù hợp (trung tâm hỗ "
                        "trợ giáo dục hòa nhập, cơ sở phục hồi chức năng, tại nhà) trong năm học; mỗi trẻ tính một lần.",
                help_en="Of those, children in inclusive education in a preschool or school, in a special school "
                        "or class (semi-inclusive included), or receiving suitable educational or rehabilitation "
                        "support (support centre, rehabilitation facility, at home) this school year; each once."),
    ),
)

SHEETS: tuple[Sheet, ...] = (TRUONG, MAM_NON, PHO_THONG, XA_PHUONG)
SHEETS_BY_NAME = {s.name: s for s in SHEETS}
NOTE_SHEET = "GhiChu"

def by_sex_subset_rules(sheet: Sheet) -> list[tuple[str, str]]:
    """(subset, superset) among the totals whose two columns both have a girls' column: the girls' counts
    and the boys' counts (all minus girls) obey the same rule."""
    return [(c.id, c.subset_of) for c in sheet.columns
            if c.female_of is None and c.subset_of is not None
            and c.id + FEMALE_SUFFIX in sheet.by_id and c.subset_of + FEMALE_SUFFIX in sheet.by_id]


def subset_rules(sheet: Sheet) -> list[tuple[str, str]]:
    """Every (subset, superset) pair of entered columns the cleaner enforces on a row."""
    rules = [(c.id, c.subset_of) for c in sheet.columns if c.subset_of is not None]
    return rules + [(a + FEMALE_SUFFIX, b + FEMALE_SUFFIX) for a, b in by_sex_subset_rules(sheet)]


def category_lookup(column: Column) -> dict[str, str]:
    """Folded spelling -> canonical code for a category column."""
    return {key: cat.code for cat in column.categories for key in cat.keys()}


def category_label(categories: tuple[Category, ...], code: str, lang: str = "vi") -> str:
    return next((cat.vi if lang == "vi" else cat.en for cat in categories if cat.code == code), code)


def school_year_label(year: int) -> str:
    """Reporting year 2025 -> '2024-2025' (DESIGN §2)."""
    return f"{year - 1}-{year}"


def workbook_name(year: int) -> str:
    return f"{school_year_label(year)}.xlsx"


WORKBOOK_NAME_RE = re.compile(r"^(?P<start>\d{4})\s*-\s*(?P<end>\d{4})\.xlsx$", re.IGNORECASE)
