"""Elementwise kernels: unary ops, binary ops and comparisons, and where.

One kernel per loop shape, with the operation chosen by an integer code. The
code is the same for every element, so LLVM hoists the test out of the loop
(loop unswitching) and vectorises each branch's loop on its own. Broadcasting
is reduced by the backend to three loop shapes:

* ``*_same``:   a and b have the output's size (flat, contiguous);
* ``*_scalar``: one operand is a single value (``scalar_left`` says which side);
* ``*_rows``:   the output is (n, m) and one operand is a row (m,) repeated n times.
Anything else is materialised to the full shape first.
"""
import math

import numpy as np

from .jit import njit, prange
from .op_codes import (ADD, DIV, EQ, EXP, GT, LE, LOG, LT, MAX, MUL, NE, NEG, POW, RELU, SIGMOID, SQRT, SUB,
                       TANH)   # the codes of op_codes.py: the rest (ERF, MIN, GE) are each branch's else
from .spans import span, span_count


# e^x for float32 without libm: e^x = 2^k e^r with k = round(x / ln 2), |r| <= ln(2) / 2.
# Adding MAGIC = 1.5 * 2^23 rounds x / ln 2 to an integer k and leaves k in the low bits of the
# float's mantissa, so k reaches the exponent field with integer arithmetic alone; every step is
# branch-free, so LLVM vectorises the loop (numba's math.exp is a scalar libm call per element).
# e^r comes from its Taylor polynomial to degree 7 (Horner form); ln 2 is split into a part exact
# in float32 and a correction (Cody and Waite) so r keeps its digits. Relative error < 1e-7.
_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_MAGIC = np.float32(12582912.0)
_MAGIC_BITS = np.int32(0x4B400000)          # the bits of _MAGIC


@njit(cache=True, error_model="numpy")
def exp32(x, out, scratch):
    """out = e^x for float32 x; out and scratch are float32 arrays of x's size, neither of them x itself.

    Inputs outside [-87, 88] (where e^x leaves the normal floats: 0 or inf, or a subnormal) and NaN
    take libm's exp in a final pass, so every result matches numpy's to float32 rounding. The first loop
    counts them as it goes (an integer sum, which vectorises), so that scalar pass runs only when one is
    there: testing every element in it took as long as the rest (1M elements: 600 against 425 us).
    """
    outside = 0
    for i in range(x.size):
        outside += not (np.float32(-87.0) <= x[i] <= np.float32(88.0))
        v = min(max(x[i], np.float32(-87.0)), np.float32(88.0))     # e^v stays a normal float32
        t = v * _LOG2E + _MAGIC
        k = t - _MAGIC
        r = v - k * _LN2_HI - k * _LN2_LO
        p = np.float32(1.9875691500e-4)
        p = p * r + np.float32(1.3981999507e-3)
        p = p * r + np.float32(8.3334519073e-3)
        p = p * r + np.float32(4.1665795894e-2)
        p = p * r + np.float32(1.6666665459e-1)
        p = p * r + np.float32(5.0000001201e-1)
        out[i] = p * r * r + r + np.float32(1.0)
        scratch[i] = t
    out_bits = out.view(np.int32)
    k_bits = scratch.view(np.int32)
    for i in range(x.size):
        out_bits[i] += (k_bits[i] - _MAGIC_BITS) << 23          # multiply by 2^k: add k to the exponent
    if outside:
        for i in range(x.size):
            if not (np.float32(-87.0) <= x[i] <= np.float32(88.0)):
                out[i] = math.exp(x[i])


@njit(inline="always")
def sigmoid_scalar(x, one):
    """1 / (1 + e^-x) without overflow: e^-|x| is at most 1."""
    if x >= 0:
        return one / (one + math.exp(-x))
    e = math.exp(x)
    return e / (one + e)


@njit(inline="always")
def unary_scalar(op, x, zero, one):
    if op == NEG:
        return -x
    if op == EXP:
        return math.exp(x)
    if op == LOG:
        return math.log(x)          # numba follows C: log(0) = -inf, log(x < 0) = nan, no exception
    if op == SQRT:
        return math.sqrt(x)
    if op == TANH:
        return math.tanh(x)
    if op == SIGMOID:
        return sigmoid_scalar(x, one)
    if op == RELU:
        return x if not x <= zero else zero      # NaN stays NaN, as numpy's maximum(x, 0)
    return math.erf(x)


@njit(cache=True, error_model="numpy")
def unary(op, x, out, zero, one):
    """out[i] = op(x[i]) over flat arrays."""
    for i in range(out.size):
        out[i] = unary_scalar(op, x[i], zero, one)


@njit(cache=True, error_model="numpy", parallel=True)
def unary_parallel(op, x, out, zero, one):
    """``unary`` with the elements split across threads, one span each (``spans.py`` says why)."""
    spans = span_count(out.size)
    for k in prange(spans):
        start, stop = span(k, spans, out.size)
        unary(op, x[start:stop], out[start:stop], zero, one)


@njit(inline="always")
def binary_scalar_op(op, x, y):
    if op == ADD:
        return x + y
    if op == SUB:
        return x - y
    if op == MUL:
        return x * y
    if op == DIV:
        return x / y
    if op == POW:
        return x ** y
    if op == MAX:
        # numpy's maximum: NaN wins
        return x if (x >= y or x != x) else y
    return x if (x <= y or x != x) else y


@njit(cache=True, error_model="numpy")
def binary_same(op, a, b, out):
    """out[i] = a[i] op b[i]."""
    for i in range(out.size):
        out[i] = binary_scalar_op(op, a[i], b[i])


@njit(cache=True, error_model="numpy", parallel=True)
def binary_same_parallel(op, a, b, out):
    """``binary_same`` with the elements split across threads, one span each (``spans.py`` says why)."""
    spans = span_count(out.size)
    for k in prange(spans):
        start, stop = span(k, spans, out.size)
        binary_same(op, a[start:stop], b[start:stop], out[start:stop])


@njit(cache=True, error_model="numpy")
def binary_scalar(op, a, s, out, scalar_left):
    """out[i] = s op a[i] (scalar_left) or a[i] op s."""
    if scalar_left:
        for i in range(out.size):
            out[i] = binary_scalar_op(op, s, a[i])
    else:
        for i in range(out.size):
            out[i] = binary_scalar_op(op, a[i], s)


@njit(cache=True, error_model="numpy")
def binary_middle(op, a, b, out, b_left):
    """out[o, m, i] = b[o, i] op a[o, m, i] (b_left) or a[o, m, i] op b[o, i], for a and out (outer, mid,
    inner) and b (outer, inner): b broadcast along a middle axis (pooling's backward, per-window maxima)."""
    outer, mid, inner = out.shape
    for o in range(outer):
        for m in range(mid):
            for i in range(inner):
                out[o, m, i] = binary_scalar_op(op, b[o, i], a[o, m, i]) if b_left else \
                    binary_scalar_op(op, a[o, m, i], b[o, i])


@njit(cache=True, error_model="numpy")
def compare_middle(op, a, b, out, b_left):
    """``binary_middle`` for comparisons (bool out)."""
    outer, mid, inner = out.shape
    for o in range(outer):
        for m in range(mid):
            for i in range(inner):
                out[o, m, i] = compare_scalar_op(op, b[o, i], a[o, m, i]) if b_left else \
                    compare_scalar_op(op, a[o, m, i], b[o, i])


@njit(cache=True, error_model="numpy")
def binary_rows(op, a, row, out, row_left):
    """out[r, j] = row[j] op a[r, j] (row_left) or a[r, j] op row[j], for 2-D a and out."""
    n, m = out.shape
    for r in range(n):
        a_r, out_r = a[r], out[r]
        if row_left:
            for j in range(m):
                out_r[j] = binary_scalar_op(op, row[j], a_r[j])
        else:
            for j in range(m):
                out_r[j] = binary_scalar_op(op, a_r[j], row[j])


# The comparison kernels repeat the three loop shapes of the arithmetic ones because their scalar
# function returns a bool: numba types each function's result once, so one function cannot return a
# number for arithmetic codes and a bool for comparison codes.
@njit(inline="always")
def compare_scalar_op(op, x, y):
    if op == EQ:
        return x == y
    if op == NE:
        return x != y
    if op == LT:
        return x < y
    if op == LE:
        return x <= y
    if op == GT:
        return x > y
    return x >= y


@njit(cache=True, error_model="numpy")
def compare_same(op, a, b, out):
    """out[i] = a[i] cmp b[i] (bool)."""
    for i in range(out.size):
        out[i] = compare_scalar_op(op, a[i], b[i])


@njit(cache=True, error_model="numpy")
def compare_scalar(op, a, s, out, scalar_left):
    """out[i] = s cmp a[i] (scalar_left) or a[i] cmp s."""
    if scalar_left:
        for i in range(out.size):
            out[i] = compare_scalar_op(op, s, a[i])
    else:
        for i in range(out.size):
            out[i] = compare_scalar_op(op, a[i], s)


@njit(cache=True, error_model="numpy")
def compare_rows(op, a, row, out, row_left):
    """out[r, j] = row[j] cmp a[r, j] (row_left) or a[r, j] cmp row[j]."""
    n, m = out.shape
    for r in range(n):
        a_r, out_r = a[r], out[r]
        if row_left:
            for j in range(m):
                out_r[j] = compare_scalar_op(op, row[j], a_r[j])
        else:
            for j in range(m):
                out_r[j] = compare_scalar_op(op, a_r[j], row[j])


@njit(cache=True, error_model="numpy")
def where(cond, a, b, out):
    """out[i] = a[i] if cond[i] else b[i] over flat arrays of one size."""
    for i in range(out.size):
        out[i] = a[i] if cond[i] else b[i]
