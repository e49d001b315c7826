"""The dtype rules of nnengine's tensors (floor 3, imported by every other core module).

* Python scalars and lists become float32 (the default float), unless they are
  all bools (bool) or a dtype is given.
* numpy arrays keep float32, float64, int32, int64 and bool; float16 is widened
  to float32 and other integer types to int64. Other dtypes raise TypeError.
* Casts never wrap or invent values: an integer that does not fit the target integer type
  (uint64's 2**64 - 1 into int64), or a NaN, infinite or out-of-range float cast to an
  integer type, raises ValueError (``checked_cast``).
* An operation on two dtypes gives the wider float if either is a float, else
  numpy's integer promotion; a Python scalar takes the dtype of the tensor it
  meets (an int tensor meeting a float scalar becomes float32).
"""
import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
SUPPORTED_DTYPES = FLOAT_DTYPES + (np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.bool_))
DEFAULT_FLOAT = np.dtype(np.float32)


def is_float_dtype(dtype):
    """Return True for the floating dtypes a Tensor can hold (float32, float64)."""
    return np.dtype(dtype) in FLOAT_DTYPES


def to_supported_dtype(dtype):
    """Return ``dtype`` as one of SUPPORTED_DTYPES, or raise TypeError naming it."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype {dtype!r} is not a dtype") from None
    if dtype not in SUPPORTED_DTYPES:
        names = ", ".join(d.name for d in SUPPORTED_DTYPES)
        raise TypeError(f"dtype {dtype.name} is not supported: tensors hold {names}")
    return dtype


def natural_dtype(array, from_python):
    """The dtype a tensor gets from ``array`` when none is requested (module rules)."""
    kind = array.dtype.kind
    if kind == "b":
        return np.dtype(np.bool_)
    if from_python and kind in "iuf":
        return DEFAULT_FLOAT
    if kind == "f":
        return DEFAULT_FLOAT if array.dtype.itemsize < 4 else to_supported_dtype(array.dtype)
    if kind in "iu":
        return array.dtype if array.dtype in SUPPORTED_DTYPES else np.dtype(np.int64)   # checked_cast checks
    raise TypeError(f"cannot make a tensor from data of dtype {array.dtype}: expected numbers or bools")


def checked_cast(array, dtype, what="data"):
    """``array.astype(dtype)`` (no copy when it already is), refusing casts that would change values.

    An integer target must hold every value: integers must lie in its range, floats must be finite
    and in range too (their fractions are dropped, as numpy and Keras do).

    Raises:
        ValueError: naming ``what``, the value range and the target dtype.
    """
    dtype = np.dtype(dtype)
    if array.dtype == dtype:
        return array
    if dtype.kind in "iu" and array.dtype.kind in "iuf" and array.size:
        info = np.iinfo(dtype)
        low, high = array.min(), array.max()
        if array.dtype.kind == "f" and not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError(f"{what}: cannot cast NaN or infinite values to {dtype.name}")
        if low < info.min or high > info.max:
            raise ValueError(f"{what}: values in [{low}, {high}] do not fit {dtype.name} "
                             f"([{info.min}, {info.max}]); casting would change them")
    return array.astype(dtype)


def result_dtype(a, b):
    """The dtype of a binary operation on dtypes ``a`` and ``b`` (module rules)."""
    a, b = np.dtype(a), np.dtype(b)
    if a == b:
        return a
    if is_float_dtype(a) and is_float_dtype(b):
        return np.promote_types(a, b)
    if is_float_dtype(a):
        return a
    if is_float_dtype(b):
        return b
    return np.promote_types(a, b)
