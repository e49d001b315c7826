"""The lowering of the numba backend's slicing primitives (numba_lowering.py): ``full``, ``getitem`` and
``index_add`` with basic slices and integers, the calls a concatenation makes (``ops.Concatenate``: the output filled
piece by piece into zeros, the gradient read back piece by piece).

The eager ``getitem`` of slices is a view; the lowered one is a contiguous copy of the same values, as every
array of a lowered plan is contiguous (the eager consumers read the same values from either). The lowered
``index_add`` adds into the slice in place, one addition per element as the eager kernel makes, so the sums
are bitwise the same. Any other index (integer arrays, steps, None, one element) is refused.
"""
import numpy as np

from .numba_emitters import Literal, LoweringRefused, Value, as_array, check_small

__all__ = ["ARRAY_EMITTERS"]


def _slices_source(index):
    """The source text of a basic index (a Literal): a tuple of slices without steps and of integers (``[:, 3:7]``,
    ``[2]``: the recurrent layers take the mask of gate 2 so); LoweringRefused for any other index, an array of
    positions among them."""
    if not isinstance(index, Literal):
        raise LoweringRefused("an index held as an array (a gather)")
    index = index.value
    parts = index if isinstance(index, tuple) else (index,)
    texts = []
    for part in parts:
        if isinstance(part, (int, np.integer)) and not isinstance(part, (bool, np.bool_)):
            texts.append(str(int(part)))
            continue
        if not isinstance(part, slice) or part.step not in (None, 1):
            raise LoweringRefused(f"an index other than plain slices and integers ({part!r})")
        texts.append(f"{'' if part.start is None else int(part.start)}:{'' if part.stop is None else int(part.stop)}")
    return "[" + ", ".join(texts) + "]"


def _full(b, backend, shape, value, dtype):
    """A new array filled with ``value`` (emitted only for arrays the plan writes into: others are folded)."""
    shape, dtype = tuple(int(s) for s in shape.value), np.dtype(dtype.value)
    if not shape:
        raise LoweringRefused("a 0-d array written into")
    name = b.new_array(shape, dtype, fill="zeros")
    if value.value != 0:
        b.body.append(f"    {name}[...] = {float(value.value)!r}")
    return Value(name, np.empty(shape, dtype))


def _getitem(b, backend, x, index):
    """The slice of ``x``, copied contiguous."""
    x = as_array(x, "the sliced array")
    source = _slices_source(index)
    example = np.ascontiguousarray(x.example[index.value])
    if not example.ndim:
        raise LoweringRefused("an index that picks one element")
    check_small(example.shape, example.dtype)
    name = b.name("t")
    b.body.append(f"    {name} = np.ascontiguousarray({x.code}{source})")
    return Value(name, example)


def _index_add(b, backend, target, index, values):
    """target[index] += values, in place; returns nothing, as the primitive."""
    target, values = as_array(target, "the array added into"), as_array(values, "the values added")
    source = _slices_source(index)
    if np.shape(target.example[index.value]) != values.example.shape:
        raise LoweringRefused("index_add of values broadcast into the slice")
    b.body.append(f"    {target.code}{source} += {values.code}")
    return None


ARRAY_EMITTERS = {"full": _full, "getitem": _getitem, "index_add": _index_add}
