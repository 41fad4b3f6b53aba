"""Kernels forked from the batch's kernel server: each notebook still gets a new process with an empty
namespace, charts still come out as images, and the outputs are the same as with a kernel started the
usual way."""

from __future__ import annotations

import json
import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from analysis import batch, kernels

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not kernels.enabled(), reason="forked kernels need Linux (fork and pidfd)")]

CHART = """import matplotlib.pyplot as plt
from analysis import plots
fig, ax = plt.subplots()
ax.plot([2021, 2022, 2023], [97.5, 98.1, 98.4], marker="o")
ax.set_title("CT17A · thử / test")
plots.percent_axis(ax, "vi")
display(fig)
plt.close(fig)"""


def notebook(*sources: str):
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture(autouse=True)
def inline_backend(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # as the batch's workers do


def execute(nb, forked: bool):
    from nbclient import NotebookClient

    extra = {"kernel_manager_class": kernels.kernel_manager_class()} if forked else {}
    NotebookClient(nb, kernel_name="python3", timeout=120, **extra).execute()
    return nb


def outputs(nb) -> list:
    return [[{k: v for k, v in o.items() if k != "metadata"} for o in c.outputs] for c in nb.cells]


def test_each_notebook_gets_a_new_process_and_an_empty_namespace():
    probe = "import json, os\nprint(json.dumps(['left_behind' in globals(), os.getpid()]))"
    first = execute(notebook("left_behind = 42", probe), forked=True)
    second = execute(notebook(probe), forked=True)
    seen_first, pid_first = json.loads(first.cells[1].outputs[0]["text"])
    seen, pid_second = json.loads(second.cells[0].outputs[0]["text"])
    assert seen_first is True and seen is False
    assert pid_first != pid_second != os.getpid()
    assert second.cells[0].execution_count == 1  # a new kernel: counting starts again


def test_charts_and_outputs_are_the_same_as_with_a_fresh_kernel():
    cells = ("x = 40 + 2\nx", CHART, "import pandas as pd\npd.DataFrame({'a': [1, 2]})", "print('ra stdout')")
    forked = execute(notebook(*cells), forked=True)
    fresh = execute(notebook(*cells), forked=False)
    assert outputs(forked) == outputs(fresh)
    assert "image/png" in forked.cells[1].outputs[0]["data"]  # an image, not '<Figure size ...>'
    assert not batch._charts_as_text(forked)


def test_a_failing_cell_is_reported_as_with_any_kernel():
    from nbclient.exceptions import CellExecutionError

    with pytest.raises(CellExecutionError, match="ZeroDivisionError"):
        execute(notebook("1 / 0"), forked=True)


def test_figure_text_instead_of_an_image_is_caught():
    nb = notebook("fig")
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "<Figure size 768x403.2 with 1 Axes>"},
                                                  execution_count=1)]
    assert batch._charts_as_text(nb)
    nb.cells[0].outputs[0]["data"]["image/png"] = "iVBORw0KGgo="
    assert not batch._charts_as_text(nb)


def test_only_the_ipykernel_launcher_of_this_python_is_forked():
    import sys

    assert kernels._launcher_args([sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "c.json"]) \
        == ([sys.executable, "-Xfrozen_modules=off"], ["-f", "c.json"])
    assert kernels._launcher_args(["/other/python", "-m", "ipykernel_launcher", "-f", "c.json"]) is None
    assert kernels._launcher_args([sys.executable, "-m", "other_kernel", "-f", "c.json"]) is None
    assert kernels._launcher_args([sys.executable, "-E", "-m", "ipykernel_launcher"]) is None


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv(kernels.ENV_SWITCH, "0")
    assert not kernels.enabled()
    json.dumps(kernels.WARM_IMPORTS)  # plain names only
    assert not [m for m in kernels.WARM_IMPORTS if m.startswith("matplotlib_inline")]


@pytest.mark.parametrize("forked", [True, False], ids=["forked", "launched"])
def test_kernels_talk_over_unix_sockets_by_absolute_path(forked, tmp_path):
    """The batch's kernels run in notebooks/ while the worker runs elsewhere: the sockets must be absolute
    paths (a relative 'kernel-ipc' would be two different files), private to the kernel, and removed after."""
    import asyncio
    import glob

    if not kernels._ipc_possible():
        pytest.skip("no Unix sockets here, or a runtime folder too long for them")

    async def run():
        km = kernels.kernel_manager_class(forked=forked)(kernel_name="python3")
        await km.start_kernel(cwd=str(tmp_path))
        try:
            assert km.transport == "ipc" and os.path.isabs(km.ip) and km.kernel_id in km.ip
            kc = km.client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=60)
            reply = await kc.execute_interactive("import os; print(os.getcwd())", timeout=60,
                                                 output_hook=lambda msg: seen.append(msg))
            kc.stop_channels()
            assert reply["content"]["status"] == "ok"
        finally:
            await km.shutdown_kernel(now=True)
        return km.ip

    seen: list = []
    ip = asyncio.run(run())
    assert any(m["content"].get("text", "").strip() == str(tmp_path) for m in seen)  # it ran where it was told
    assert not glob.glob(ip + "-*")  # the socket files are removed with the kernel
