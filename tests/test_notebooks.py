"""Guards papermill and nbval do not give: one parameters cell, a python3 kernel, and stored outputs that
nbval can compare (an nbval run over notebooks without outputs proves nothing)."""

from __future__ import annotations

import ast
import json
import re

import pytest

from analysis import config

NOTEBOOKS = sorted(config.NOTEBOOKS_DIR.glob("*.ipynb"))
PARAMETERS = {"year", "raw_dir", "processed_dir", "lang"}


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_the_four_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["01_clean.ipynb", "02_indicators.ipynb", "03_projections.ipynb",
                                           "04_report.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exactly_one_parameters_cell_with_the_contract(path):
    nb = load(path)
    tagged = [c for c in code_cells(nb) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "papermill needs exactly one cell tagged 'parameters'"
    names = {t.id for node in ast.walk(ast.parse("".join(tagged[0]["source"])))
             if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
    assert names == PARAMETERS
    # a near-miss tag ("parameter", "Parameters") would make papermill silently run the defaults
    near = [c for c in nb["cells"] for tag in c.get("metadata", {}).get("tags", [])
            if tag != "parameters" and re.sub(r"\W", "", tag.lower()).startswith("param")]
    assert not near


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_reads_every_parameter(path, caplog):
    """papermill parses the parameters cell itself (``inspect_notebook``, and to warn about unknown
    parameters): a line with a second '=' (in a comment) is skipped with 'Unable to parse line', and the
    batch then logs 'Passed unknown parameter' for every year. All four must be read, without warnings."""
    import logging

    import papermill

    with caplog.at_level(logging.WARNING, logger="papermill"):
        found = papermill.inspect_notebook(str(path))
    assert set(found) == PARAMETERS
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_python3_kernel(path):
    assert load(path)["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_are_stored_and_clean(path):
    nb = load(path)
    for cell in code_cells(nb):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            continue
        assert cell["outputs"], f"cell {cell.get('id')} has no stored output: nbval would compare nothing"
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"cell {cell.get('id')} stored an error"
    text = json.dumps([c["outputs"] for c in code_cells(nb)])
    assert "Traceback" not in text
    for forbidden in (str(config.PROJECT_ROOT), "/home/", "/root/", "site-packages"):
        assert forbidden not in text, f"stored outputs contain a machine path: {forbidden}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_asserts_the_year_it_reports(path):
    source = "".join("".join(c["source"]) for c in code_cells(load(path)))
    assert re.search(r"assert .*year", source), "each notebook checks it reports the year it was asked for"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_logic_in_notebooks(path):
    """Notebooks call the package; they do not define functions or classes of their own."""
    for cell in code_cells(load(path)):
        tree = ast.parse("".join(cell["source"]))
        assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]


def test_make_test_runs_nbval_on_every_notebook():
    makefile = (config.PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"pytest --nbval notebooks\b", makefile)


@pytest.mark.parametrize("name", ["02_indicators.ipynb", "03_projections.ipynb", "04_report.ipynb"])
def test_charts_are_stored_as_images(name):
    """A kernel with a headless backend would store '<Figure size …>' text instead of the charts."""
    nb = load(config.NOTEBOOKS_DIR / name)
    outputs = [o for c in code_cells(nb) for o in c["outputs"]]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 5
    texts = ["".join(o.get("data", {}).get("text/plain", "")) for o in outputs if "image/png" not in o.get("data", {})]
    assert not any(text.startswith("<Figure size") for text in texts)
