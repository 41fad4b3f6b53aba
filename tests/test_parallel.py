"""Two parts at once (``analysis.parallel``): the forked child's arrays come back equal, its errors are raised
here, and the indicator table is the same with one job or two."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from analysis import indicators, parallel
from analysis.clean import load_tables
from analysis.geography import Crosswalk

needs_fork = pytest.mark.skipif(not parallel.available(), reason="needs os.fork and os.memfd_create (Linux)")


def _arrays(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"ints": rng.integers(0, 10**9, 100_003), "floats": rng.random(7), "empty": np.zeros(0),
            "bools": rng.random(33) > 0.5, "strided": np.arange(20)[::3], "grid": rng.random((3, 4)),
            "text": ["a", "b"], "pid": os.getpid(), "scalar": np.int64(7), "none": None}


@needs_fork
def test_the_childs_part_comes_back_equal_and_writable():
    here, there = parallel.in_two(lambda: _arrays(1), lambda: _arrays(2))
    expected = _arrays(2)
    assert there["pid"] != os.getpid() and here["pid"] == os.getpid()  # it did run in another process
    assert there["scalar"] == 7 and there["none"] is None
    for key in ("ints", "floats", "empty", "bools", "strided", "grid"):
        np.testing.assert_array_equal(there[key], expected[key])
        assert there[key].dtype == expected[key].dtype
    assert there["text"] == ["a", "b"]
    there["ints"][0] = -1  # an ordinary array to the caller
    assert there["ints"][0] == -1


@needs_fork
def test_a_result_without_arrays():
    assert parallel.in_two(lambda: 1, lambda: (2, "x")) == (1, [2, "x"])  # sequences come back as lists


def test_one_job_runs_both_here():
    here, there = parallel.in_two(lambda: os.getpid(), lambda: os.getpid(), jobs=1)
    assert here == there == os.getpid()


@needs_fork
def test_an_error_in_the_child_is_raised_here():
    def fails():
        raise ValueError("bad part")

    with pytest.raises(RuntimeError, match="in the child process") as caught:
        parallel.in_two(lambda: 1, fails)
    assert "ValueError: bad part" in str(caught.value) and "fails" in str(caught.value)


@needs_fork
def test_a_documented_error_in_the_child_stays_one():
    from analysis.errors import AnalysisError

    def fails():
        raise AnalysisError("Thiếu dữ liệu.", "Data missing.")

    with pytest.raises(AnalysisError) as caught:
        parallel.in_two(lambda: 1, fails)
    assert (caught.value.message_vi, caught.value.message_en) == ("Thiếu dữ liệu.", "Data missing.")


@needs_fork
def test_what_cannot_be_sent_back_is_an_error():
    with pytest.raises(RuntimeError, match="cannot be shared"):
        parallel.in_two(lambda: 1, lambda: np.array(["a", None], dtype=object))


@needs_fork
def test_a_child_that_dies_is_an_error_not_an_empty_result():
    with pytest.raises(RuntimeError, match="ended without a result"):
        parallel.in_two(lambda: 1, lambda: os._exit(3))


@needs_fork
def test_an_error_here_does_not_leave_the_child_behind(monkeypatch):
    def fails():
        raise KeyError("here")

    forked = []
    real_fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: forked.append(real_fork()) or forked[-1])
    with pytest.raises(KeyError):
        parallel.in_two(fails, lambda: __import__("time").sleep(30))  # killed, not waited for 30 s
    assert forked and forked[0] > 0
    with pytest.raises(ChildProcessError):  # already reaped: no zombie left
        os.waitpid(forked[0], os.WNOHANG)


def test_at_once_keeps_the_order_of_the_calls():
    calls = [lambda k=k: np.full(3, k) for k in range(5)]
    for threads in (1, 2):
        out = parallel.at_once(*calls, threads=threads)
        assert [int(a[0]) for a in out] == [0, 1, 2, 3, 4]


def test_at_once_raises_the_first_error():
    def fails():
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        parallel.at_once(lambda: 1, fails, threads=2)


@needs_fork
def test_indicators_are_the_same_with_two_jobs(sample_processed, monkeypatch):
    """The sample is below the size where two processes pay: the threshold is lowered to use them."""
    tables, crosswalk = load_tables(sample_processed), Crosswalk.load()
    targets = indicators.load_targets()
    one = indicators.process(tables, crosswalk, targets, jobs=1)
    monkeypatch.setattr(indicators, "PARALLEL_ROWS", 0)
    calls = []
    real = parallel.in_two
    monkeypatch.setattr(parallel, "in_two", lambda *a, **k: calls.append(1) or real(*a, **k))
    two = indicators.process(tables, crosswalk, targets, jobs=2)
    assert calls, "the two-process path was not taken"
    assert two["series_break"].any()  # the sample's 2025 reorganisation: breaks are placed after the split
    pd.testing.assert_frame_equal(one, two, check_exact=True)
