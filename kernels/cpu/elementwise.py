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

from numba import njit, prange

# unary op codes
NEG, EXP, LOG, SQRT, TANH, SIGMOID, RELU, ERF = range(8)
UNARY = {"neg": NEG, "exp": EXP, "log": LOG, "sqrt": SQRT, "tanh": TANH, "sigmoid": SIGMOID, "relu": RELU,
         "erf": ERF}
# binary op codes
ADD, SUB, MUL, DIV, POW, MAX, MIN = range(7)
BINARY = {"add": ADD, "sub": SUB, "mul": MUL, "div": DIV, "power": POW, "maximum": MAX, "minimum": MIN}
# comparison codes
EQ, NE, LT, LE, GT, GE = range(6)
COMPARE = {"equal": EQ, "not_equal": NE, "less": LT, "less_equal": LE, "greater": GT, "greater_equal": GE}


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
        return x if (x > zero or x != x) else zero      # NaN stays NaN, as numpy's maximum(x, 0)
    return math.erf(x)


@njit(cache=True)
def unary(op, x, out, zero, one):
    """out[i] = op(x[i]) over flat arrays."""
    for i in range(out.size):
        out[i] = unary_scalar(op, x[i], zero, one)


@njit(cache=True, parallel=True)
def unary_parallel(op, x, out, zero, one):
    """``unary`` with the elements split across threads."""
    for i in prange(out.size):
        out[i] = unary_scalar(op, x[i], zero, one)


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


@njit(cache=True)
def binary_same(op, a, b, out):
    """out[i] = a[i] op b[i]."""
    for i in range(out.size):
        out[i] = binary_scalar_op(op, a[i], b[i])


@njit(cache=True, parallel=True)
def binary_same_parallel(op, a, b, out):
    """``binary_same`` split across threads."""
    for i in prange(out.size):
        out[i] = binary_scalar_op(op, a[i], b[i])


@njit(cache=True)
def binary_scalar(op, a, s, out, scalar_left):
    """out[i] = s op a[i] (scalar_left) or a[i] op s."""
    if scalar_left:
        for i in range(out.size):
            out[i] = binary_scalar_op(op, s, a[i])
    else:
        for i in range(out.size):
            out[i] = binary_scalar_op(op, a[i], s)


@njit(cache=True)
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


@njit(cache=True)
def compare_same(op, a, b, out):
    """out[i] = a[i] cmp b[i] (bool)."""
    for i in range(out.size):
        out[i] = compare_scalar_op(op, a[i], b[i])


@njit(cache=True)
def compare_scalar(op, a, s, out, scalar_left):
    """out[i] = s cmp a[i] (scalar_left) or a[i] cmp s."""
    if scalar_left:
        for i in range(out.size):
            out[i] = compare_scalar_op(op, s, a[i])
    else:
        for i in range(out.size):
            out[i] = compare_scalar_op(op, a[i], s)


@njit(cache=True)
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


@njit(cache=True)
def where(cond, a, b, out):
    """out[i] = a[i] if cond[i] else b[i] over flat arrays of one size."""
    for i in range(out.size):
        out[i] = a[i] if cond[i] else b[i]
