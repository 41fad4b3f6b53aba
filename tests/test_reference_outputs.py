"""The sample pipeline reproduces the committed reference outputs (tests/fixtures/reference/): counts and text
exactly, floats to a relative 1e-12. A rewrite that changes no output passes unchanged; a deliberate change of
an output rewrites the reference (tests/fixtures/make_reference.py) in the same commit, so the diff shows it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.indicators import load_indicators
from analysis.projections_by_year import load_projections

REFERENCE = Path(__file__).with_name("fixtures") / "reference"


def assert_same_table(got: pd.DataFrame, want: pd.DataFrame, name: str) -> None:
    assert list(got.columns) == list(want.columns), f"{name}: columns differ"
    assert len(got) == len(want), f"{name}: {len(got)} rows, reference {len(want)}"
    for col in want.columns:
        a, b = got[col], want[col]
        if pd.api.types.is_float_dtype(b.dtype) and not isinstance(b.dtype, pd.CategoricalDtype):
            x, y = a.to_numpy(dtype=float, na_value=np.nan), b.to_numpy(dtype=float, na_value=np.nan)
            same = np.isclose(x, y, rtol=1e-12, atol=0.0, equal_nan=True) | (x == y)
            assert same.all(), f"{name}.{col}: first difference at row {np.flatnonzero(~same)[0]}"
        else:  # counts, years, flags and text: exactly (categorical or not)
            x = a.astype(object).where(a.notna(), None).tolist()
            y = b.astype(object).where(b.notna(), None).tolist()
            bad = [i for i, (p, q) in enumerate(zip(x, y)) if p != q]
            assert not bad, f"{name}.{col}: row {bad[0]}: {x[bad[0]]!r} != reference {y[bad[0]]!r}"


@pytest.fixture(scope="module")
def outputs(sample_processed):
    projections, verdicts = load_projections(sample_processed)
    return {"indicators": load_indicators(sample_processed), "projections": projections, "verdicts": verdicts}


@pytest.mark.parametrize("name", ["indicators", "projections", "verdicts"])
def test_outputs_equal_the_reference(outputs, name):
    assert_same_table(outputs[name], pd.read_parquet(REFERENCE / f"{name}.parquet"), name)


def test_the_comparison_can_fail():
    want = pd.DataFrame({"n": [1, 2], "v": [1.0, np.nan], "s": pd.Categorical(["a", "b"])})
    assert_same_table(want.copy(), want, "same")
    for changed in (want.assign(n=[1, 3]), want.assign(v=[1.0 + 1e-9, np.nan]), want.assign(s=["a", "c"]),
                    want.iloc[:1], want[["v", "n", "s"]]):
        with pytest.raises(AssertionError):
            assert_same_table(changed, want, "changed")
