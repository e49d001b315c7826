"""Tensor construction, conversions, and op values against numpy (hypothesis over shapes and dtypes)."""
import numpy as np
import pytest
from conftest import tolerance
from helpers import broadcast_pairs, seeds, small_shapes, values
pytest.importorskip("hypothesis")        # property tests: skipped where hypothesis is missing
from hypothesis import given
from hypothesis import strategies as st

import nnengine as nn


# ----------------------------------------------------------------------
# Construction and dtypes
# ----------------------------------------------------------------------
@pytest.mark.parametrize("data, dtype", [
    (1.5, np.float32), (3, np.float32), ([1, 2, 3], np.float32), ([[1.0], [2.0]], np.float32),
    (True, np.bool_), ([True, False], np.bool_),
    (np.zeros(2, np.float32), np.float32), (np.zeros(2, np.float64), np.float64),
    (np.zeros(2, np.float16), np.float32), (np.zeros(2, np.int32), np.int32),
    (np.zeros(2, np.int64), np.int64), (np.zeros(2, np.uint8), np.int64), (np.float64(2.0), np.float64),
])
def test_default_dtypes(device, data, dtype):
    t = nn.tensor(data, device=device)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.asarray(data).astype(dtype))
    assert t.device == nn.backends.parse_device(device)      # "cuda" is GPU 0: "cuda:0", as PyTorch names it


def test_explicit_dtype_and_tensor_copy(device):
    t = nn.tensor([1, 2], dtype="float64", device=device)
    assert t.dtype == np.float64
    copy = nn.Tensor(t)
    assert copy.dtype == np.float64 and copy is not t and not copy.requires_grad


def test_numpy_returns_a_copy(device):
    t = nn.tensor([1.0, 2.0], device=device)
    t.numpy()[0] = 100
    assert t.numpy()[0] == 1.0


def test_array_protocol_shape_size_and_item(device):
    t = nn.tensor([[1.0, 2.0, 3.0]], device=device)
    assert np.asarray(t).shape == (1, 3)
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="without a copy"):
        np.asarray(t, copy=False)
    assert t.shape == (1, 3) and t.ndim == 2 and t.size == 3 and len(t) == 1
    assert nn.tensor([[4.5]], device=device).item() == 4.5
    assert float(nn.tensor(2.0, device=device)) == 2.0 and int(nn.tensor(3.0, device=device)) == 3
    assert bool(nn.tensor([1.0], device=device)) is True
    assert t.tolist() == [[1.0, 2.0, 3.0]]


def test_repr_is_readable(device):
    t = nn.tensor([[1.0, 2.0]], device=device, requires_grad=True)
    shown = nn.backends.parse_device(device)
    assert repr(t) == f"Tensor([[1., 2.]], dtype=float32, device='{shown}', requires_grad=True)"
    assert "grad_fn=<MulBackward>" in repr(t * 2)


def test_creation_helpers(device):
    np.testing.assert_array_equal(nn.zeros((2, 3), device=device).numpy(), np.zeros((2, 3), np.float32))
    np.testing.assert_array_equal(nn.ones(4, dtype="float64", device=device).numpy(), np.ones(4))
    full = nn.full((2,), 7, dtype="int64", device=device)
    assert full.dtype == np.int64 and full.tolist() == [7, 7]


def test_to_same_device_returns_self_and_other_device_copies(device):
    t = nn.tensor([1.0, 2.0], device=device)
    assert t.to(device) is t
    other = t.to("numpy" if device != "numpy" else "cpu")
    assert other.device != device
    np.testing.assert_array_equal(other.numpy(), t.numpy())


def test_scalar_keeps_tensor_dtype_and_int_meets_float():
    f32 = nn.tensor([1.0, 2.0])
    assert (f32 * 2.5).dtype == np.float32
    assert (2 + f32).dtype == np.float32
    ints = nn.tensor(np.array([1, 2]))
    assert (ints + 1).dtype == np.int64
    assert (ints * 0.5).dtype == np.float32
    assert (ints / ints).dtype == np.float32  # true division gives floats
    assert (f32 + nn.tensor(np.array([1.0], np.float64))).dtype == np.float64
    flags = nn.tensor([True, False])
    assert (flags + 1).dtype == np.int64 and (flags + 1).tolist() == [2, 1]
    assert (flags * 0.5).dtype == np.float32
    with pytest.raises(TypeError, match="complex"):
        f32 * 1j


def test_numpy_array_on_the_left_defers_to_tensor():
    result = np.array([1.0, 2.0], dtype=np.float32) + nn.tensor([1.0, 1.0])
    assert isinstance(result, nn.Tensor)
    np.testing.assert_array_equal(result.numpy(), [2.0, 3.0])


def test_sum_of_bool_counts():
    t = nn.tensor([True, False, True])
    assert t.sum().item() == 2


# ----------------------------------------------------------------------
# Values against numpy
# ----------------------------------------------------------------------
BINARY = {
    "+": (lambda a, b: a + b, np.add),
    "-": (lambda a, b: a - b, np.subtract),
    "*": (lambda a, b: a * b, np.multiply),
    "/": (lambda a, b: a / b, np.divide),
    "**": (lambda a, b: a ** b, np.power),
}


@pytest.mark.parametrize("op", sorted(BINARY))
@given(shapes=broadcast_pairs(), seed=seeds)
def test_binary_values_match_numpy(device, float_dtype, op, shapes, seed):
    ours, reference = BINARY[op]
    a, b = values(seed, shapes[0], dtype=float_dtype), values(seed + 1, shapes[1], 0.5, 2.0, dtype=float_dtype)
    if op == "**":
        a = np.abs(a) + float_dtype.type(0.1)  # real powers need a positive base
    result = ours(nn.tensor(a, device=device), nn.tensor(b, device=device))
    assert result.dtype == float_dtype
    np.testing.assert_allclose(result.numpy(), reference(a, b), **tolerance(float_dtype))


COMPARISONS = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
               ">": np.greater, ">=": np.greater_equal}


@pytest.mark.parametrize("op", sorted(COMPARISONS))
@given(shapes=broadcast_pairs(), seed=seeds)
def test_comparisons_match_numpy(device, op, shapes, seed):
    a = np.round(values(seed, shapes[0]))  # rounding makes equal values common
    b = np.round(values(seed + 1, shapes[1]))
    ta, tb = nn.tensor(a, device=device), nn.tensor(b, device=device)
    result = eval(f"ta {op} tb")  # noqa: S307 - the operator under test
    assert result.dtype == np.bool_
    np.testing.assert_array_equal(result.numpy(), COMPARISONS[op](a.astype(np.float32), b.astype(np.float32)))
    scalar = eval(f"ta {op} 0.0")  # noqa: S307
    np.testing.assert_array_equal(scalar.numpy(), COMPARISONS[op](a.astype(np.float32), 0.0))


def test_equality_with_none_is_false():
    assert (nn.tensor([1.0]) == None) is False  # noqa: E711 - checks the operator


UNARY = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh, "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(shape=small_shapes, seed=seeds)
def test_unary_values_match_numpy(device, float_dtype, name, shape, seed):
    low = 0.1 if name in ("log", "sqrt") else -5.0
    x = values(seed, shape, low, 5.0, dtype=float_dtype)
    result = getattr(nn.tensor(x, device=device), name)()
    assert result.dtype == float_dtype
    np.testing.assert_allclose(result.numpy(), UNARY[name](x.astype(np.float64)), rtol=2e-6 if
                               float_dtype == np.float32 else 1e-12, atol=1e-7)


def test_sigmoid_does_not_overflow(device):
    x = nn.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], device=device)
    with np.errstate(over="raise"):
        result = x.sigmoid().numpy()
    np.testing.assert_allclose(result, [0, 1.9287e-22, 0.5, 1, 1], rtol=1e-4)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), seed=seeds,
       keepdims=st.booleans(), data=st.data())
def test_reductions_match_numpy(device, float_dtype, shape, seed, keepdims, data):
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    x = values(seed, shape, dtype=float_dtype)
    t = nn.tensor(x, device=device)
    tol = tolerance(float_dtype)
    np.testing.assert_allclose(t.sum(axis, keepdims).numpy(), x.sum(axis, keepdims=keepdims), **tol)
    np.testing.assert_allclose(t.mean(axis, keepdims).numpy(), x.mean(axis, keepdims=keepdims), **tol)
    np.testing.assert_array_equal(t.max(axis, keepdims).numpy(), x.max(axis, keepdims=keepdims))
    np.testing.assert_array_equal(t.argmax(axis).numpy(), np.argmax(x, axis))


def test_matmul_values_and_vector_cases(device, float_dtype):
    a, b = values(0, (3, 4), dtype=float_dtype), values(1, (4, 2), dtype=float_dtype)
    ta, tb = nn.tensor(a, device=device), nn.tensor(b, device=device)
    tol = tolerance(float_dtype)
    np.testing.assert_allclose((ta @ tb).numpy(), a @ b, **tol)
    np.testing.assert_allclose((ta @ tb[:, 0]).numpy(), a @ b[:, 0], **tol)
    np.testing.assert_allclose((ta[0] @ tb).numpy(), a[0] @ b, **tol)
    assert (ta[0] @ ta[0]).shape == ()
    batch = values(2, (5, 3, 4), dtype=float_dtype)
    np.testing.assert_allclose((nn.tensor(batch, device=device) @ tb).numpy(), batch @ b, **tol)


def test_reshape_transpose_and_indexing(device):
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = nn.tensor(x, device=device)
    np.testing.assert_array_equal(t.reshape(6, -1).numpy(), x.reshape(6, -1))
    np.testing.assert_array_equal(t.reshape((4, 6)).numpy(), x.reshape(4, 6))
    np.testing.assert_array_equal(t.transpose(2, 0, 1).numpy(), x.transpose(2, 0, 1))
    np.testing.assert_array_equal(t.T.numpy(), x.T)
    np.testing.assert_array_equal(t[1, :, ::2].numpy(), x[1, :, ::2])
    np.testing.assert_array_equal(t[:, [2, 0, 2]].numpy(), x[:, [2, 0, 2]])
    np.testing.assert_array_equal(t[x > 10].numpy(), x[x > 10])
    np.testing.assert_array_equal(t[..., None, 0].numpy(), x[..., None, 0])


@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), seed=seeds)
def test_softmax_values(device, float_dtype, shape, seed):
    x = values(seed, shape, -20, 20, dtype=float_dtype)
    e = np.exp(x - x.max(-1, keepdims=True))
    tol = dict(rtol=1e-5, atol=1e-6) if float_dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(nn.tensor(x, device=device).softmax().numpy(), e / e.sum(-1, keepdims=True), **tol)
    np.testing.assert_allclose(nn.tensor(x, device=device).log_softmax().numpy(),
                               np.log(e / e.sum(-1, keepdims=True)), **tol)


def test_softmax_is_stable_for_huge_logits(device):
    t = nn.tensor([[1e4, 0.0, -1e4], [1000.0, 1000.0, 1000.0]], device=device)
    np.testing.assert_allclose(t.softmax().numpy(), [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    assert np.all(np.isfinite(t.log_softmax().numpy()))
