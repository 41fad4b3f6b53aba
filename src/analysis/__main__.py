"""Command line: ``python -m analysis clean | indicators | project | batch | template``.

Each command lives in the module that owns its logic and exposes ``configure(parser)`` and ``run(args)``;
this file only dispatches, and turns the project's documented errors into a clear message and exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from analysis.errors import AnalysisError, DataFileError

COMMANDS = {
    "clean": ("analysis.clean", "Đọc và làm sạch số liệu thô / read and clean the raw workbooks"),
    "indicators": ("analysis.indicators", "Tính các chỉ tiêu / compute the plan's indicators"),
    "project": ("analysis.projection_cli", "Dự báo chuỗi năm đến 2030 / project yearly series (DESIGN §6)"),
    "projections": ("analysis.projections_by_year", "Dự báo mọi chỉ tiêu / project every indicator series"),
    "batch": ("analysis.batch", "Chạy và xuất báo cáo / run and render the yearly reports"),
    "template": ("analysis.template_files", "Tạo mẫu nhập liệu và tài liệu / write the empty template"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.configure(sub.add_parser(name, help=help_text, description=help_text))
        sub.choices[name].set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # import only the module of the command asked for (fast start, and a broken module elsewhere
    # does not break every command)
    parser = argparse.ArgumentParser(prog="python -m analysis", add_help=False)
    parser.add_argument("command", nargs="?")
    known, _ = parser.parse_known_args(argv[:1])
    if known.command in COMMANDS:
        module_name, help_text = COMMANDS[known.command]
        module = importlib.import_module(module_name)
        sub = argparse.ArgumentParser(prog=f"python -m analysis {known.command}", description=help_text)
        module.configure(sub)
        args = sub.parse_args(argv[1:])
        run = module.run
    else:
        args = build_parser().parse_args(argv)
        run = args._module.run
    try:
        return int(run(args) or 0)
    except (DataFileError, AnalysisError) as exc:
        print(f"LỖI / ERROR: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Đã dừng / interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
