"""The parallel variants of the elementwise and update kernels against their serial kernels, bitwise; and
the loops of their own that bias + relu and relu's gradient take, against the formulas they replace.

A parallel variant runs the serial kernel over one span of the elements per prange iteration
(``kernels/cpu/spans.py``); every element is computed by the same code either way, so the results must be
identical, for any size: fewer elements than spans, sizes that do not divide evenly, and the empty array.
"""
import numpy as np
import pytest
pytest.importorskip("hypothesis")        # property tests: skipped where hypothesis is missing
from hypothesis import given, settings
from hypothesis import strategies as st

from nnengine.kernels.cpu import config, elementwise, nn, op_codes, optim, spans

SIZES = st.one_of(st.integers(0, 3 * spans.SPANS + 7), st.sampled_from([1, spans.SPANS, 10_007]))
DTYPES = st.sampled_from([np.float32, np.float64])
UNARY = [op_codes.NEG, op_codes.EXP, op_codes.LOG, op_codes.SQRT, op_codes.TANH, op_codes.SIGMOID, op_codes.RELU]
BINARY = [op_codes.ADD, op_codes.SUB, op_codes.MUL, op_codes.DIV, op_codes.POW, op_codes.MAX, op_codes.MIN]


def _values(n, dtype, seed, low=-3.0, high=3.0):
    return np.random.default_rng(seed).uniform(low, high, n).astype(dtype)


def test_spans_cover_every_element_once():
    for n in (0, 1, 5, spans.SPANS - 1, spans.SPANS, spans.SPANS + 1, 1000, 10_007):
        count = spans.span_count(n)
        bounds = [spans.span(k, count, n) for k in range(count)]
        covered = [i for start, stop in bounds for i in range(start, stop)]
        assert covered == list(range(n)), n
        assert count == max(1, min(n, spans.SPANS))


@settings(max_examples=30, deadline=None)
@given(n=SIZES, dtype=DTYPES, op=st.sampled_from(UNARY))
def test_unary_parallel_is_the_serial_kernel(n, dtype, op):
    x = _values(n, dtype, 1)
    zero, one = dtype(0), dtype(1)
    serial, parallel = np.full(n, np.nan, dtype), np.full(n, np.nan, dtype)
    elementwise.unary(op, x, serial, zero, one)
    elementwise.unary_parallel(op, x, parallel, zero, one)
    np.testing.assert_array_equal(parallel, serial)


@settings(max_examples=30, deadline=None)
@given(n=SIZES, dtype=DTYPES, op=st.sampled_from(BINARY))
def test_binary_parallel_is_the_serial_kernel(n, dtype, op):
    a, b = _values(n, dtype, 2, 0.1, 3.0), _values(n, dtype, 3)
    serial, parallel = np.full(n, np.nan, dtype), np.full(n, np.nan, dtype)
    elementwise.binary_same(op, a, b, serial)
    elementwise.binary_same_parallel(op, a, b, parallel)
    np.testing.assert_array_equal(parallel, serial)


def _run_both(serial_kernel, parallel_kernel, arrays, scalars):
    """Run each kernel on its own copy of ``arrays`` (updated in place) and return both copies."""
    mine, theirs = [a.copy() for a in arrays], [a.copy() for a in arrays]
    serial_kernel(*mine, *scalars)
    parallel_kernel(*theirs, *scalars)
    return mine, theirs


@settings(max_examples=30, deadline=None)
@given(n=SIZES, dtype=DTYPES, name=st.sampled_from(["sgd", "adam", "rmsprop", "adagrad"]),
       flags=st.tuples(st.booleans(), st.booleans()))
def test_update_parallel_is_the_serial_kernel(n, dtype, name, flags):
    t = dtype
    param, grad = _values(n, dtype, 4), _values(n, dtype, 5)
    state = [np.abs(_values(n, dtype, 6 + i)) for i in range(3)]
    empty = np.zeros(0, dtype)                    # a state the update does not use, as the backend passes it
    first, second = flags
    arrays, scalars = {
        "sgd": ([param, grad, state[0] if first else empty], (t(0.01), t(0.9), t(0.999), first, second)),
        "adam": ([param, grad, state[0], state[1], state[2] if first else empty],
                 (t(0.001), t(0.1), t(0.001), t(1e-7), t(0.999), first)),
        "rmsprop": ([param, grad, state[0], state[1] if first else empty, state[2] if second else empty],
                    (t(0.01), t(0.9), t(0.1), t(0.5), t(1e-7), t(1.0), first, second)),
        "adagrad": ([param, grad, state[0]], (t(0.01), t(1e-7), t(0.999))),
    }[name]
    mine, theirs = _run_both(getattr(optim, name), getattr(optim, name + "_parallel"), arrays, scalars)
    for got, expected in zip(theirs, mine):
        np.testing.assert_array_equal(got, expected)


def test_streaming_kernels_take_the_higher_threshold(monkeypatch):
    monkeypatch.setattr(config, "PARALLEL_MIN_ELEMENTS", 100)
    monkeypatch.setattr(config, "PARALLEL_MIN_STREAMING_ELEMENTS", 1000)
    assert not config.parallel(99) and config.parallel(100)
    assert not config.parallel(999, streaming=True) and config.parallel(1000, streaming=True)
    assert config.PARALLEL_MIN_STREAMING_ELEMENTS >= config.PARALLEL_MIN_ELEMENTS


FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(FLOATS, min_size=6, max_size=60), dtype=DTYPES, parallel=st.booleans())
def test_bias_relu_loop_is_the_sum_then_relu(values, dtype, parallel):
    # bias + relu runs in a loop of its own (kernels/cpu/nn.py): the same bits as adding, then the relu
    z = np.array(values[: len(values) // 3 * 3], dtype).reshape(-1, 3)
    bias = np.array(values[:3], dtype)
    kernel = nn.bias_activation_parallel if parallel else nn.bias_activation
    zero, one = dtype(0), dtype(1)
    fused, two_steps = z.copy(), z + bias
    with np.errstate(all="ignore"):
        kernel(fused, bias, True, nn.RELU, zero, one)
    kernel(two_steps, bias, False, nn.RELU, zero, one)         # no bias: the shared loop's relu
    np.testing.assert_array_equal(fused, two_steps)
    np.testing.assert_array_equal(np.signbit(fused), np.signbit(two_steps))
    assert np.array_equal(np.isnan(fused), np.isnan(z + bias))     # NaN stays NaN, as numpy's maximum


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 40), columns=st.integers(1, 9), dtype=DTYPES, parallel=st.booleans())
def test_relu_gradient_loop_masks_and_sums_rows_in_order(rows, columns, dtype, parallel):
    rng = np.random.default_rng(rows * 10 + columns)
    out = np.maximum(rng.standard_normal((rows, columns)), 0).astype(dtype)
    grad_out = rng.standard_normal((rows, columns)).astype(dtype)
    dz, grad_b = np.full_like(out, np.nan), np.zeros(columns, dtype)
    kernel = nn.activation_grad_parallel if parallel else nn.activation_grad
    kernel(out, grad_out, nn.RELU, dz, grad_b, dtype(0), dtype(1))
    expected = np.where(out > 0, grad_out, dtype(0))
    np.testing.assert_array_equal(dz, expected)
    total = np.zeros(columns, dtype)
    for row in expected:                       # row after row, as the serial kernel adds (one chunk here)
        total += row
    np.testing.assert_array_equal(grad_b, total)
