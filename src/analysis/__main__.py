"""``python -m analysis COMMAND``: dispatches to the command's module (``configure(parser)``, ``run(args)``),
turns the project's errors into a message and an exit code, and says which step comes next."""

from __future__ import annotations

import argparse
import importlib
import sys

from analysis.errors import AnalysisError, DataFileError

DESCRIPTION = ("Theo dõi Kế hoạch 226/KH-PGDĐT: các bước chạy theo thứ tự clean → indicators → projections → batch "
               "(`make reports` chạy cả bốn). / Monitoring plan 226/KH-PGDĐT: the steps run in the order clean → "
               "indicators → projections → batch (`make reports` runs all four).")
COMMANDS = {
    "clean": ("analysis.clean", "Đọc và làm sạch sổ tính các năm học / read and clean the school-year workbooks"),
    "indicators": ("analysis.indicators", "Tính các chỉ tiêu của kế hoạch / compute the plan's indicators"),
    "projections": ("analysis.projections_by_year",
                    "Dự báo mọi chỉ tiêu đến 2030 và đánh giá so với chỉ tiêu / project every indicator to 2030 "
                    "and judge it against the targets"),
    "batch": ("analysis.batch", "Chạy và xuất báo cáo từng năm (HTML, Excel) / run and render the yearly reports "
                                "(HTML, Excel)"),
    "project": ("analysis.projection_cli",
                "Dự báo một tệp CSV bất kỳ gồm các chuỗi theo năm (series_id, year, value) / project any CSV of "
                "yearly series (series_id, year, value)"),
    "template": ("analysis.template_files", "Tạo mẫu nhập liệu trống và tài liệu / write the empty template workbook"),
}
NEXT = {"clean": "indicators", "indicators": "projections", "projections": "batch"}
HELP = "hiện trợ giúp này rồi thoát / show this help and exit"


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description, add_help=False)
    parser._optionals.title = "tùy chọn / options"  # argparse has no public way to name this group
    parser.add_argument("-h", "--help", action="help", help=HELP)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _parser("python -m analysis", DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="lệnh / commands")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.configure(sub.add_parser(name, help=help_text, description=help_text, add_help=False))
        sub.choices[name].add_argument("-h", "--help", action="help", help=HELP)
        sub.choices[name].set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # import only the command's module: a fast start, and a broken module elsewhere breaks no other command
    command = argv[0] if argv else None
    if command in COMMANDS:
        module = importlib.import_module(COMMANDS[command][0])
        parser = _parser(f"python -m analysis {command}", COMMANDS[command][1])
        module.configure(parser)
        args, run = parser.parse_args(argv[1:]), module.run
    else:
        args = build_parser().parse_args(argv)
        command, run = args.command, args._module.run
    try:
        code = int(run(args) or 0)
    except (DataFileError, AnalysisError) as exc:
        print(f"LỖI / ERROR: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Đã dừng / interrupted", file=sys.stderr)
        return 130
    if code == 0 and command in NEXT:
        print(f"Bước tiếp theo / next step: python -m analysis {NEXT[command]}")
    return code


if __name__ == "__main__":
    sys.exit(main())
