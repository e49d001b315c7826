"""The lowering of the numba backend's elementwise primitives (numba_lowering.py; the others are in
numba_emitters.py): unary functions, binary arithmetic and comparisons in the backend's loop shapes,
``where``, broadcasts, contiguity and casts.

Each writes the kernel the eager primitive runs (``kernels/cpu/elementwise.py``). On arrays of up to
``NUMPY_MAX_ELEMENTS`` the eager binary arithmetic takes numpy's ufuncs instead: one correctly rounded
operation per element, bitwise the kernels' results (maximum and minimum let NaN win in both), so the
lowered step may call the kernels throughout.
"""
import numpy as np

from ..kernels.cpu import elementwise, op_codes
from .layout import middle_broadcast, trailing_row
from .numba_emitters import LoweringRefused, Value, as_array, check_small, typed_constant, typed_flag, typed_int

__all__ = ["ELEMENTWISE_EMITTERS"]


def _unary(op):
    """The emitter of an elementwise primitive the backend runs as ``elementwise.unary`` with code ``op``."""
    def emit(b, backend, x):
        x = as_array(x, "the operand")
        dtype = x.example.dtype
        if dtype.kind != "f" or not x.example.size:
            raise LoweringRefused("an elementwise function of an empty or non-float array")
        out = b.new_array(x.example.shape, dtype)
        b.call(elementwise.unary, typed_int(op), f"{x.code}.reshape(-1)", f"{out}.reshape(-1)",
               typed_constant(dtype, 0), typed_constant(dtype, 1))
        return Value(out, np.empty(x.example.shape, dtype))
    return emit


def _exp(b, backend, x):
    """The backend's exp: float32 through the vectorised ``exp32`` (with its scratch), float64 the unary kernel."""
    x = as_array(x, "the operand")
    if x.example.dtype != np.float32:
        return _unary(op_codes.EXP)(b, backend, x)
    if not x.example.size:
        raise LoweringRefused("exp of an empty array")
    out, scratch = b.new_array(x.example.shape, np.float32), b.new_array((x.example.size,), np.float32)
    b.call(elementwise.exp32, f"{x.code}.reshape(-1)", f"{out}.reshape(-1)", scratch)
    return Value(out, np.empty(x.example.shape, np.float32))


def _elementwise(op, compare=False):
    """The emitter of a binary primitive: the loop shape the backend's ``_broadcast`` picks (equal shapes, one
    value, a trailing row, a middle axis, else both operands broadcast to flat copies) and its ``binary_*``
    (``compare_*``) kernel, whose results numpy's ufuncs match bit for bit on tiny arrays."""
    scalar_op = elementwise.compare_scalar_op if compare else elementwise.binary_scalar_op
    same, with_scalar, rows, middle = (
        (elementwise.compare_same, elementwise.compare_scalar, elementwise.compare_rows, elementwise.compare_middle)
        if compare else
        (elementwise.binary_same, elementwise.binary_scalar, elementwise.binary_rows, elementwise.binary_middle))

    def emit(b, backend, left, right):
        for value in (left, right):
            if not isinstance(value, Value) or value.example.dtype.kind not in "fiub":
                raise LoweringRefused("an elementwise operation on values the plan does not hold as arrays")
        dtype = left.example.dtype
        if right.example.dtype != dtype or not compare and dtype.kind != "f":
            raise LoweringRefused("an elementwise operation on mixed or non-float dtypes")
        shape = np.broadcast_shapes(left.example.shape, right.example.shape)
        out_dtype = np.dtype(bool) if compare else dtype
        if left.scalar and right.scalar and shape == ():
            name = b.name("s")
            b.body.append(f"    {name} = {b.kernel(scalar_op)}({typed_int(op)}, {left.code}, {right.code})")
            return Value(name, np.empty((), out_dtype), scalar=True)
        out = b.new_array(shape, out_dtype)
        if left.example.shape == shape == right.example.shape and not (left.scalar or right.scalar):
            b.call(same, typed_int(op), f"{left.code}.reshape(-1)", f"{right.code}.reshape(-1)", f"{out}.reshape(-1)")
            return Value(out, np.empty(shape, out_dtype))
        for big, small, small_left in ((left, right, False), (right, left, True)):    # the backend's loop shapes
            if big.scalar or big.example.shape != shape:
                continue
            if small.example.size == 1:
                b.call(with_scalar, typed_int(op), f"{big.code}.reshape(-1)", _single(small), f"{out}.reshape(-1)",
                       typed_flag(small_left))
                return Value(out, np.empty(shape, out_dtype))
            if trailing_row(small.example.shape, shape):
                m = small.example.size
                b.call(rows, typed_int(op), f"{big.code}.reshape(-1, {m})", f"{small.code}.reshape(-1)",
                       f"{out}.reshape(-1, {m})", typed_flag(small_left))
                return Value(out, np.empty(shape, out_dtype))
            split = middle_broadcast(small.example.shape, shape)
            if split is not None:
                b.call(middle, typed_int(op), f"{big.code}.reshape({split!r})", f"{small.code}.reshape({split[0]}, -1)",
                       f"{out}.reshape({split!r})", typed_flag(small_left))
                return Value(out, np.empty(shape, out_dtype))
        b.call(same, typed_int(op), _broadcast_flat(left, shape), _broadcast_flat(right, shape), f"{out}.reshape(-1)")
        return Value(out, np.empty(shape, out_dtype))
    return emit


def _broadcast_flat(value, shape):
    """``value`` broadcast to ``shape`` as a flat contiguous array: the backend's ``_flat(np.broadcast_to(...))``."""
    if value.scalar:
        return f"np.full({int(np.prod(shape))}, {value.code})"
    if value.example.shape == tuple(shape):
        return f"{value.code}.reshape(-1)"
    return f"np.ascontiguousarray(np.broadcast_to({value.code}, {tuple(shape)!r})).reshape(-1)"


def _single(value):
    """The one element of a size-1 Value, as the backend's ``small.reshape(-1)[0]``."""
    return value.code if value.scalar else f"{value.code}.reshape(-1)[0]"


def _where(b, backend, condition, left, right):
    values = (condition, left, right)
    if not all(isinstance(v, Value) for v in values) or left.example.dtype != right.example.dtype:
        raise LoweringRefused("where on values the plan does not hold as arrays of one dtype")
    shape = np.broadcast_shapes(*(v.example.shape for v in values))
    size = int(np.prod(shape))
    flats = []
    for value in values:                 # the backend's flat copies of each operand broadcast to the shape
        if value.example.shape == shape and not value.scalar:
            flats.append(f"{value.code}.reshape(-1)")
        elif value.example.size == 1:
            flats.append(f"np.full({size}, {_single(value)})")
        else:
            raise LoweringRefused("where with an operand broadcast along some axes only")
    out = b.new_array(shape, left.example.dtype)
    b.call(elementwise.where, *flats, f"{out}.reshape(-1)")
    return Value(out, np.empty(shape, left.example.dtype))


def _broadcast_to(b, backend, x, shape):
    """A contiguous copy where the backend makes a view: the values are the same, and nothing in a lowered
    plan writes into either."""
    x = _array_or_scalar(x)
    shape = tuple(shape.value)
    name = b.name("t")
    if x.scalar or x.example.size == 1:
        b.body.append(f"    {name} = np.full({shape!r}, {_single(x)})")
    else:
        b.body.append(f"    {name} = np.ascontiguousarray(np.broadcast_to({x.code}, {shape!r}))")
    check_small(shape, x.example.dtype)
    return Value(name, np.empty(shape, x.example.dtype))


def _ascontiguous(b, backend, x):
    return _array_or_scalar(x)           # every array of a lowered plan is contiguous already


def _astype(b, backend, x, dtype):
    x = _array_or_scalar(x)
    target = np.dtype(dtype.value)
    if target.kind not in "fiub":
        raise LoweringRefused(f"a cast to {target}")
    name = b.name("t")
    b.body.append(f"    {name} = np.{target.name}({x.code})" if x.scalar
                  else f"    {name} = {x.code}.astype(np.{target.name})")
    return Value(name, np.empty(x.example.shape, target), scalar=x.scalar)


def _array_or_scalar(x):
    if not isinstance(x, Value):
        raise LoweringRefused("an operand the plan does not hold as a value")
    return x


ELEMENTWISE_EMITTERS = {
    **{name: _unary(op) for name, op in op_codes.UNARY.items() if name != "exp"}, "exp": _exp,
    **{name: _elementwise(op) for name, op in op_codes.BINARY.items()},
    **{name: _elementwise(op, compare=True) for name, op in op_codes.COMPARE.items()},
    "where": _where, "broadcast_to": _broadcast_to, "ascontiguous": _ascontiguous, "astype": _astype,
}
