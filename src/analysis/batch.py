"""The yearly batch: each reporting year's notebooks run with papermill and rendered to offline HTML, its Excel
workbook, and ``reports/index.html``. Tasks run on ``--jobs`` worker processes, longest first; a year is built in
a staging folder (its other files linked in) and swapped in when done (``atomic.install``), so a run replaces
exactly what it renders and a killed run leaves each year as it was or fully updated."""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import quote

from analysis import config
from analysis.atomic import install, recover_folder, write_text
from analysis.errors import AnalysisError
from analysis.template import school_year_label

NOTEBOOKS = ("01_clean", "02_indicators", "03_projections", "04_report")
EXPORT_TASK = "excel"
# relative cost of each task (measured with benchmarks/bench_batch.py): a year's longest tasks start first
TASK_COST = {"04_report": 10, "02_indicators": 8, "03_projections": 5, EXPORT_TASK: 2, "01_clean": 1}
TEMPLATE_DIR = Path(__file__).with_name("templates")
INDEX_ORDER = ("04_report", EXPORT_TASK, "01_clean", "02_indicators", "03_projections")  # officials' two first


# --- names, derived from the parameters in this one place ---------------------------------------------------
def output_name(notebook: str, lang: str, suffix: str) -> str:
    """'04_report' + vi -> '04_report.html'; English copies carry '_en'."""
    return f"{notebook}{'' if lang == 'vi' else '_' + lang}{suffix}"


def excel_name(year: int, lang: str) -> str:
    return output_name(f"bang_tong_hop_{year}", lang, ".xlsx")


def task_outputs(task: str, year: int, lang: str) -> tuple[str, ...]:
    """The files a task of a year makes: what a run of that task replaces."""
    if task == EXPORT_TASK:
        return (excel_name(year, lang),)
    return output_name(task, lang, ".ipynb"), output_name(task, lang, ".html")


def parse_years(text: str | None, available: list[int]) -> list[int]:
    """'2021-2026', '2023', '2021,2024' -> years; default: every year with data."""
    if not text:
        return available
    try:
        bounds = [[int(x) for x in part.split("-", 1)] for part in text.split(",")]  # [first] or [first, last]
    except ValueError:
        raise AnalysisError(f"Năm không hợp lệ: '{text}' (ví dụ 2021-2026).",
                            f"Invalid years: '{text}' (e.g. 2021-2026).") from None
    years = [year for b in bounds for year in range(b[0], b[-1] + 1)]
    missing = ", ".join(str(y) for y in years if y not in available)
    if missing:
        have = ", ".join(map(str, available))
        raise AnalysisError(f"Không có số liệu cho năm {missing} (có: {have}).",
                            f"No data for year(s) {missing} (available: {have}).")
    return sorted(set(years))


# --- one task (a notebook or the export), in a worker process -----------------------------------------------
@dataclass
class TaskResult:
    """A notebook (or the export) of a year; ``fatal``: failed outside its cells, so the previous files stay."""
    task: str
    file: str = ""
    error: str = ""  # empty: it succeeded
    fatal: bool = False


def _scrub(path: Path):
    """Drop the absolute paths papermill records in a notebook's metadata, and its random cell id."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # papermill gives its injected cell a random id: make reruns reproducible
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell["id"] = "injected-parameters"
    pm = nb.metadata.get("papermill", {})
    pm.update({key: Path(pm[key]).name for key in ("input_path", "output_path") if pm.get(key)})
    nbformat.write(nb, path)
    return nb


@cache
def _exporter(lang: str):
    """One HTML exporter per language and process (its templates are compiled once)."""
    from nbconvert import HTMLExporter

    return HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                        extra_template_basedirs=[str(TEMPLATE_DIR)], template_name="report", language_code=lang)


def contents(nb) -> list[dict]:
    """The report's contents: headings of levels 2 and 3 (written or displayed), with nbconvert's ids."""
    texts = [cell.source if cell.cell_type == "markdown"  # else the Markdown the code displayed
             else "\n".join("".join(out.get("data", {}).get("text/markdown", "")) for out in cell.get("outputs", []))
             for cell in nb.cells]
    return [{"level": len(m[1]), "text": m[2], "id": quote(m[2].replace(" ", "-"), safe="?/:@!$&'()*+,;=")}
            for m in re.finditer(r"^(##|###) +(.+?) *$", "\n".join(texts), re.M)]  # ids as nbconvert makes them


def render_html(notebook, html_path: Path, lang: str, year: int, name: str) -> None:
    """Executed notebook -> one offline HTML file (``templates/report``) with contents, print styles, notice."""
    from analysis.report import t

    nb = copy.deepcopy(notebook)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    heading = t("report_heading", lang, school_year=school_year_label(year))
    nb.metadata["title"] = f"{heading} · {t('doc_' + name, lang)}"
    banner = t("synthetic_banner", lang)
    synthetic = any(banner in "".join(out.get("data", {}).get("text/markdown", ""))
                    for cell in nb.cells for out in cell.get("outputs", []))
    nb.metadata["report"] = {"toc": contents(nb), "notice": banner if synthetic else "",
                             **{k: t(k, lang) for k in ("back_to_index", "contents", "page")}}
    html_path.write_text(_exporter(lang).from_notebook_node(nb)[0], encoding="utf-8")


def _charts_as_text(nb) -> bool:
    """A kernel whose matplotlib is not hooked to IPython's inline backend stores a figure's text form only."""
    return any(out.get("output_type") in ("display_data", "execute_result") and "image/png" not in out.get("data", {})
               and str(out.get("data", {}).get("text/plain", "")).startswith("<Figure size")
               for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", []))


def _worker_setup() -> None:
    # kernels inherit it: charts come out as inline images even if scripts set a headless MPLBACKEND (Agg)
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"


def _quiet_kernel_manager():
    """No interrupt before a finished kernel's shutdown: ipykernel logs it as 'ERROR | KeyboardInterrupt'."""
    from jupyter_client import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self):
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

    return QuietKernelManager


def run_task(year: int, task: str, lang: str, staging: Path, processed_dir: Path | None = None,
             raw_dir: Path | None = None) -> TaskResult:
    """One task of a year into its staging folder: the Excel export, or a notebook run and rendered (no HTML if
    it fails)."""
    file = task_outputs(task, year, lang)[0]  # the export's workbook, or the executed notebook
    out = staging / file
    try:
        if task == EXPORT_TASK:
            from analysis.exports import export_year

            export_year(year, out, lang, processed_dir, raw_dir)
            return TaskResult(task, file)
        import papermill as pm

        # default folders are left to the notebook (None), so no machine path is written into its outputs
        folders = {"processed_dir": processed_dir, "raw_dir": raw_dir}
        params = {"year": year, "lang": lang, **{k: str(v) for k, v in folders.items() if v}}
        try:
            pm.execute_notebook(
                str(config.NOTEBOOKS_DIR / f"{task}.ipynb"), str(out), parameters=params, kernel_name="python3",
                progress_bar=False, log_output=False, cwd=str(config.NOTEBOOKS_DIR),
                request_save_on_cell_execute=False,  # one write at the end, not two per cell
                kernel_manager_class=_quiet_kernel_manager(),
                # kernel messages below ERROR (a warning about TCP without encryption) stay out of the output
                extra_arguments=["--IPKernelApp.log_level=ERROR"])
        except Exception as exc:  # PapermillExecutionError and kernel failures alike
            if out.exists():
                _scrub(out)
            return TaskResult(task, file, _short_error(exc))
        nb = _scrub(out)
        if _charts_as_text(nb):
            return TaskResult(task, file,
                              "charts came out as '<Figure size ...>' text instead of images (matplotlib backend)")
        render_html(nb, staging / output_name(task, lang, ".html"), lang, year, task)
    except Exception as exc:
        return TaskResult(task, file, _short_error(exc), fatal=True)
    return TaskResult(task, file)


def finish_year(year: int, lang: str, results: list[TaskResult], staging: Path,
                reports_dir: Path) -> list[tuple[str, str]]:
    """Swap a year's staging folder in, the year's other files linked into it first; returns its failures."""
    order = {name: i for i, name in enumerate((*NOTEBOOKS, EXPORT_TASK))}
    failed = sorted((r for r in results if r.error), key=lambda r: order.get(r.task, 99))
    kept = {name for r in results if r.fatal for name in task_outputs(r.task, year, lang)}  # untrusted: old files stay
    for name in kept:
        (staging / name).unlink(missing_ok=True)
    replaced = {name for r in results for name in task_outputs(r.task, year, lang)} - kept
    try:
        final = reports_dir / str(year)
        for old in final.iterdir() if final.is_dir() else ():
            if old.name not in replaced and not (staging / old.name).exists():
                try:
                    os.link(old, staging / old.name)
                except OSError:  # a file system without hard links
                    shutil.copy2(old, staging / old.name)
        install(staging, final)
    except Exception as exc:
        shutil.rmtree(staging, ignore_errors=True)
        return [("", _short_error(exc))]
    return [(r.file, f"{r.task}: {r.error}" if r.fatal else r.error) for r in failed]


def _short_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    last = [line for line in text if line.strip()][-3:] if text else [type(exc).__name__]
    return " ".join(last)[:400]


def recover(reports_dir: Path) -> None:
    """After a killed run: put back a year whose swap was interrupted, drop abandoned staging folders."""
    for hidden in reports_dir.glob(".*"):  # none in a folder that does not exist
        recover_folder(reports_dir / hidden.name[1:].split(".")[0])


# --- many years ---------------------------------------------------------------------------------------------
def available_years(processed_dir: Path | None = None) -> list[int]:
    from analysis.indicators import load_indicators

    return sorted(int(y) for y in load_indicators(processed_dir)["year"].unique())


def run_batch(years: list[int], jobs: int = 2, lang: str = "vi", reports_dir: Path | None = None,
              processed_dir: Path | None = None, raw_dir: Path | None = None,
              notebooks: tuple[str, ...] = NOTEBOOKS, progress: bool = True) -> dict[int, list[tuple[str, str]]]:
    """Every year's tasks on a pool of workers, then the index; returns each year's failures (file, error)."""
    from tqdm import tqdm

    reports_dir = config.reports_dir(reports_dir)
    recover(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    tasks = sorted((*notebooks, EXPORT_TASK), key=lambda name: -TASK_COST.get(name, 5))  # longest first
    done: dict[int, list[TaskResult]] = {year: [] for year in years}
    staging: dict[int, Path] = {}
    failures: dict[int, list[tuple[str, str]]] = {}
    bar = tqdm(total=len(years), unit="năm/year", desc="Báo cáo / reports", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    pool = ProcessPoolExecutor(max_workers=max(1, min(jobs, len(years) * len(tasks))), initializer=_worker_setup)
    try:
        for year in years:
            staging[year] = Path(tempfile.mkdtemp(prefix=f".{year}.", suffix=".tmp", dir=reports_dir))
            staging[year].chmod(0o755)  # a year's folder is for its readers, not private like mkdtemp's
        futures = {pool.submit(run_task, year, task, lang, staging[year], processed_dir, raw_dir): (year, task)
                   for year in years for task in tasks}
        bar.set_postfix_str("đang chạy/running: " + ", ".join(map(str, sorted(staging)[:jobs])))
        for fut in as_completed(futures):
            year, task = futures[fut]
            try:
                done[year].append(fut.result())
            except Exception as exc:  # a worker that died
                done[year].append(TaskResult(task, "", _short_error(exc), fatal=True))
            if len(done[year]) == len(tasks):
                failures[year] = finish_year(year, lang, done[year], staging.pop(year), reports_dir)
                bar.update(1)
                for file, error in failures[year]:
                    bar.write(f"LỖI / FAILED {year}: {file or 'năm/year'} — {error}")
                if staging:
                    bar.set_postfix_str("đang chạy/running: " + ", ".join(map(str, sorted(staging)[:jobs])))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # an interrupted run does not wait for its workers
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for folder in staging.values():  # years never finished (interrupted run)
            shutil.rmtree(folder, ignore_errors=True)
        bar.close()
    write_index(reports_dir, processed_dir)
    return dict(sorted(failures.items()))


# --- the index page -----------------------------------------------------------------------------------------
def write_index(reports_dir: Path, processed_dir: Path | None = None) -> Path:
    """reports/index.html, in Vietnamese: each year's documents in either language and headline verdicts."""
    import jinja2

    from analysis.clean import load_tables
    from analysis.report import headline_verdicts, t

    years = []
    for year in sorted((int(p.name) for p in reports_dir.iterdir() if p.is_dir() and p.name.isdigit()), reverse=True):
        folder = reports_dir / str(year)
        links = [{"file": name, "label": t("doc_" + task, lg) + ("" if lg == "vi" else f" ({t('index_english', 'vi')})"),
                  "main": task in INDEX_ORDER[:2]}
                 for task in INDEX_ORDER for lg in ("vi", "en")
                 for name in [task_outputs(task, year, lg)[-1]] if (folder / name).exists()]
        failed = [p.name for p in sorted(folder.glob("*.ipynb")) if not (folder / p.with_suffix(".html").name).exists()]
        years.append({"year": year, "school_year": school_year_label(year), "links": links, "failed": failed,
                      "verdicts": headline_verdicts(year, "vi", processed_dir)})
    try:  # do the processed data come from the synthetic sample (the workbooks say so)?
        files = load_tables(processed_dir)["files"]
        synthetic = bool("synthetic" in files and files["synthetic"].fillna(False).any())
    except Exception:
        synthetic = False
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR / "index"), autoescape=True)
    texts = {k: t(k, "vi") for k in ("index_title", "index_intro", "synthetic_banner", "reporting_year",
                                     "index_files", "index_analyses", "index_verdicts", "school_year", "batch_failed")}
    page = env.get_template("index.html.j2").render(lang="vi", t=texts, years=years, synthetic=synthetic)
    return write_text(reports_dir / "index.html", page + "\n")


# --- command line -------------------------------------------------------------------------------------------
def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--years", help="năm báo cáo, ví dụ 2021-2026 hoặc 2023,2025 (mặc định: mọi năm có số "
                                        "liệu) / reporting years, e.g. 2021-2026 or 2023,2025 (default: every year)")
    parser.add_argument("--jobs", type=int, default=2, help="số notebook chạy song song, thường bằng số lõi CPU "
                                                            "(mặc định 2) / notebooks run at once (default 2)")
    parser.add_argument("--lang", default="vi", choices=("vi", "en"),
                        help="ngôn ngữ báo cáo (mặc định vi) / language of the reports (default vi)")
    parser.add_argument("--notebooks", help="chỉ chạy các notebook này, ví dụ 04_report (mặc định: cả bốn); các "
                                            "báo cáo khác giữ nguyên / only these notebooks, e.g. 04_report "
                                            "(default: all four); other reports are kept")
    parser.add_argument("--reports-dir", help="thư mục báo cáo (mặc định reports/) / reports folder")
    parser.add_argument("--processed-dir", help="thư mục dữ liệu đã xử lý (mặc định data/processed) / "
                                                "processed data folder")
    parser.add_argument("--raw-dir", help="thư mục số liệu thô (mặc định data/raw) / raw data folder")
    parser.add_argument("--no-progress", action="store_true", help="không hiện thanh tiến trình / no progress bar")


def run(args: argparse.Namespace) -> int:
    processed, raw = (Path(folder).resolve() if folder else None for folder in (args.processed_dir, args.raw_dir))
    notebooks = tuple(args.notebooks.split(",")) if args.notebooks else NOTEBOOKS
    unknown = ", ".join(n for n in notebooks if n not in NOTEBOOKS)
    if unknown:
        raise AnalysisError(f"Không có notebook: {unknown} (có: {', '.join(NOTEBOOKS)}).",
                            f"Unknown notebook(s): {unknown} (available: {', '.join(NOTEBOOKS)}).")
    years = parse_years(args.years, available_years(processed))
    reports = config.reports_dir(args.reports_dir)
    started = time.perf_counter()
    failures = run_batch(years, args.jobs, args.lang, reports, processed, raw, notebooks, progress=not args.no_progress)
    failed = {year: items for year, items in failures.items() if items}
    print(f"{len(failures) - len(failed)}/{len(failures)} năm/years ok in {time.perf_counter() - started:.1f} s -> "
          f"{config.display_path(reports)}/index.html")
    for year, items in failed.items():
        for file, error in items:
            where = f"{config.display_path(reports / str(year))}/{file}" if file else str(year)
            print(f"LỖI / FAILED {year}: {where}: {error}", file=sys.stderr)
    return 1 if failed else 0
