"""``kernels/cpu/elementwise.exp32``, the vectorised float32 exp of the softmax kernels, against numpy's exp.

Inside [-87, 88] it is a polynomial (relative error under 1e-7, a couple of float32 ulps); outside, and for NaN
and infinities, a fix-up pass takes libm's exp, and it must run whenever a single such element is present.
"""
import numpy as np
import pytest
pytest.importorskip("hypothesis")        # property tests: skipped where hypothesis is missing
from hypothesis import given, settings
from hypothesis import strategies as st

from nnengine.kernels.cpu import elementwise

IN_RANGE = st.floats(-87.0, 88.0, width=32)
ANY = st.floats(allow_nan=True, allow_infinity=True, width=32)


def _exp32(values):
    x = np.array(values, np.float32)
    out, scratch = np.full_like(x, np.nan), np.empty_like(x)
    elementwise.exp32(x, out, scratch)
    return x, out


@settings(max_examples=60, deadline=None)
@given(values=st.lists(IN_RANGE, min_size=1, max_size=300))
def test_in_range_within_a_few_ulps_of_numpy(values):
    x, out = _exp32(values)
    np.testing.assert_allclose(out, np.exp(x), rtol=3e-7, atol=0)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(IN_RANGE, min_size=1, max_size=300), odd=st.lists(ANY, min_size=1, max_size=3),
       where=st.integers(0, 299))
def test_any_element_outside_the_range_takes_libm(values, odd, where):
    # the fix-up pass must not be skipped when the odd values are few among many ordinary ones
    values = list(values)
    for value in odd:
        values.insert(where % (len(values) + 1), value)
    x, out = _exp32(values)
    with np.errstate(over="ignore"):
        expected = np.exp(x)
    outside = ~((x >= -87.0) & (x <= 88.0))
    assert np.array_equal(out[outside], expected[outside], equal_nan=True)
    np.testing.assert_allclose(out[~outside], expected[~outside], rtol=3e-7, atol=0)
