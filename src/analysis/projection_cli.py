"""``python -m analysis project INPUT.csv -o OUTPUT.csv [--until 2030] [--targets T.csv --status S.csv [--baseline YEAR]]``

The DESIGN §6 command: the engine's projections of any long yearly series file and, given targets, the
verdict's statuses. This module only reads and writes. Bad input never ends in a traceback: an unusable file
stops with a bilingual message (exit code 2), a bad value is left out with a warning.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd

from analysis import config, projection, verdicts
from analysis.errors import AnalysisError
from analysis.atomic import write_file
from analysis.formats import neutralise_frame

MAX_WARNINGS = 20


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT",
                        help="CSV: series_id, year, value [, lower, upper, numerator, denominator, series_break]")
    parser.add_argument("-o", "--output", required=True, help="projections CSV (UTF-8)")
    parser.add_argument("--until", type=int, default=config.PROJECTION_UNTIL,
                        help=f"last year to project (default {config.PROJECTION_UNTIL})")
    parser.add_argument("--targets", help="CSV: series_id, target_year, target_value, direction (or comparator)")
    parser.add_argument("--status", help="verdict CSV to write (needs --targets): status achieved, not_met, on_track, "
                             "needs_acceleration (grade on_pace, moderate, strong), regressing, no_target or "
                             "insufficient_data, with the evidence")
    parser.add_argument("--baseline", type=int, metavar="YEAR", help="year the verdict measures pace from (a series "
                        "without it starts at its first year after it); default: each series' first year")
    parser.add_argument("--method", choices=[projection.AUTO, *projection.METHODS],
                        help="projection method (default: auto, the backtest-weighted combination)")
    parser.add_argument("--quantiles", action="store_true", help="also write the quantile columns q01 ... q99")
    parser.add_argument("--lang", default="vi", choices=["vi", "en"], help="language of the status labels")


def read_csv(path: str, what_vi: str, what_en: str) -> pd.DataFrame:
    """A CSV as text columns (numbers are checked by the engine, which names the bad rows)."""
    file = Path(path)
    if not file.is_file():
        raise AnalysisError(f"Không tìm thấy {what_vi}: {path}", f"{what_en} not found: {path}")
    try:
        with warnings.catch_warnings():  # more fields than the header: pandas would drop or shift data
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(file, dtype=str, encoding="utf-8-sig", skipinitialspace=True, index_col=False)
    except pd.errors.ParserWarning:
        raise AnalysisError(
            f"{what_vi.capitalize()} {path}: có dòng nhiều ô hơn dòng tiêu đề (dấu phẩy thập phân? dùng dấu chấm).",
            f"{what_en} {path}: a row has more fields than the header (decimal comma? use '.').") from None
    except pd.errors.EmptyDataError:
        raise AnalysisError(f"{what_vi.capitalize()} rỗng: {path}", f"{what_en} is empty: {path}") from None
    except UnicodeDecodeError:
        raise AnalysisError(f"{what_vi.capitalize()} không phải UTF-8: {path}", f"{what_en} is not UTF-8 text: {path}") from None
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        raise AnalysisError(f"Không đọc được {what_vi} {path}: {exc}", f"Cannot read {what_en} {path}: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise AnalysisError(f"{what_vi.capitalize()} không có dòng dữ liệu: {path}", f"{what_en} has no data rows: {path}")
    return frame


def write_csv(frame: pd.DataFrame, path: str) -> None:
    """Plain UTF-8 (no BOM: for programs), atomically; text a spreadsheet would run as a formula gets a "'"."""
    frame = neutralise_frame(frame)
    try:
        write_file(path, lambda tmp: frame.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n",
                                                    float_format="%.10g"))
    except OSError as exc:
        raise AnalysisError(f"Không ghi được {path}: {exc.strerror}", f"Cannot write {path}: {exc.strerror}") from None


def run(args: argparse.Namespace) -> int:
    if bool(args.targets) != bool(args.status):
        raise AnalysisError("--targets và --status phải đi cùng nhau.", "--targets and --status go together.")
    if args.baseline is not None and not args.targets:
        raise AnalysisError("--baseline chỉ dùng với --targets và --status.", "--baseline needs --targets and --status.")
    history = read_csv(args.input, "tệp đầu vào", "input file")
    _, problems = projection.check_input(history)  # structural faults raise here, before any work
    for message in problems["message_vi"].str.cat(problems["message_en"], sep=" / ").head(MAX_WARNINGS):
        print(f"CẢNH BÁO / WARNING: {message}", file=sys.stderr)
    if len(problems) > MAX_WARNINGS:
        print(f"CẢNH BÁO / WARNING: ... +{len(problems) - MAX_WARNINGS}", file=sys.stderr)
    until = args.until
    if args.targets:
        targets = verdicts.normalise_targets(read_csv(args.targets, "tệp chỉ tiêu", "targets file"))
        until = max(until, int(targets["target_year"].max()))
    projected = projection.project(history, until=until, method=args.method)
    shown = projected[projected["year"].isna() | (projected["year"] <= args.until)]
    quantiles = projection.QUANTILE_COLUMNS if args.quantiles else []
    write_csv(shown[projection.OUTPUT_COLUMNS + projection.EXTRA_COLUMNS + quantiles], args.output)
    if args.targets:
        verdict = verdicts.assess(history, projected, targets, baseline_year=args.baseline, lang=args.lang)
        write_csv(verdict, args.status)
    n_series = projected["series_id"].nunique()
    n_short = projected.loc[projected["method"] == projection.INSUFFICIENT, "series_id"].nunique()
    print(f"{n_series} chuỗi / series, {n_short} thiếu dữ liệu / insufficient_data -> {args.output}", file=sys.stderr)
    return 0
