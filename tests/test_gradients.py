"""Every differentiable op checked by central finite differences in float64 (nnengine.gradcheck).

Shapes, broadcasting and values come from hypothesis; each test runs on every
available backend device.
"""
import numpy as np
import pytest
from helpers import TARGET_KINDS, away_from_zero, broadcast_pairs, distinct, seeds, small_shapes, values
pytest.importorskip("hypothesis")        # property tests: skipped where hypothesis is missing
from hypothesis import assume, given
from hypothesis import strategies as st

import nnengine as nn
import nnengine.functional as F


def check(device, fn, *arrays):
    """gradcheck ``fn`` with every array as a float64 input on ``device``."""
    inputs = [nn.tensor(a, dtype=np.float64, device=device, requires_grad=True) for a in arrays]
    result = nn.gradcheck(fn, *inputs)
    assert result.passed, str(result)


BINARY = {
    "add": (lambda a, b: a + b, values, values),
    "sub": (lambda a, b: a - b, values, values),
    "mul": (lambda a, b: a * b, values, values),
    "div": (lambda a, b: a / b, values, away_from_zero),
    "pow": (lambda a, b: a ** b, lambda s, sh: values(s, sh, 0.3, 2.0), values),
    "maximum": (F.maximum, distinct, lambda s, sh: distinct(s + 1, sh) + 0.013),
    "minimum": (F.minimum, distinct, lambda s, sh: distinct(s + 1, sh) + 0.013),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(shapes=broadcast_pairs(), seed=seeds)
def test_binary_ops_with_broadcasting(device, name, shapes, seed):
    fn, make_a, make_b = BINARY[name]
    check(device, fn, make_a(seed, shapes[0]), make_b(seed + 7, shapes[1]))


@given(shape=small_shapes, seed=seeds, exponent=st.sampled_from([2, 3, 0.5, -1.5]))
def test_power_by_python_scalar(device, shape, seed, exponent):
    check(device, lambda a: a ** exponent, values(seed, shape, 0.3, 2.0))


@given(shape=small_shapes, seed=seeds)
def test_power_with_tensor_exponent_at_zero_base(device, shape, seed):
    base = np.zeros(shape)
    exponent = nn.tensor(values(seed, shape, 1.5, 3.0), dtype=np.float64, device=device, requires_grad=True)
    (nn.tensor(base, dtype=np.float64, device=device) ** exponent).sum().backward()
    np.testing.assert_array_equal(exponent.grad.numpy(), np.zeros(shape))


@given(shape=small_shapes, seed=seeds)
def test_reflected_scalar_ops(device, shape, seed):
    check(device, lambda a: 3.0 - a, values(seed, shape))
    check(device, lambda a: 2.0 / a, away_from_zero(seed, shape))
    check(device, lambda a: 2.0 ** a, values(seed, shape))


UNARY = {
    "neg": (lambda x: -x, values),
    "exp": (lambda x: x.exp(), values),
    "log": (lambda x: x.log(), lambda s, sh: values(s, sh, 0.2, 3.0)),
    "sqrt": (lambda x: x.sqrt(), lambda s, sh: values(s, sh, 0.2, 3.0)),
    "tanh": (lambda x: x.tanh(), values),
    "sigmoid": (lambda x: x.sigmoid(), lambda s, sh: values(s, sh, -6, 6)),
    "relu": (lambda x: x.relu(), away_from_zero),
    "erf": (lambda x: F.erf(x), values),
    "clip": (lambda x: x.clip(-0.5, 0.7), lambda s, sh: distinct(s, sh) * 1.3 + 0.004),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(shape=small_shapes, seed=seeds)
def test_unary_ops(device, name, shape, seed):
    fn, make = UNARY[name]
    check(device, fn, make(seed, shape))


@given(shapes=broadcast_pairs(), seed=seeds)
def test_where(device, shapes, seed):
    cond = nn.tensor(np.random.default_rng(seed).random(shapes[0]) > 0.5, device=device)
    check(device, lambda a, b: F.where(cond, a, b), values(seed, shapes[0]), values(seed + 1, shapes[1]))


@st.composite
def shape_and_axis(draw, min_dims=1):
    shape = draw(st.lists(st.integers(1, 4), min_size=min_dims, max_size=3).map(tuple))
    axes = draw(st.one_of(
        st.none(),
        st.integers(-len(shape), len(shape) - 1),
        st.lists(st.integers(0, len(shape) - 1), unique=True, min_size=1).map(tuple)))
    return shape, axes


@given(case=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_sum_and_mean(device, case, keepdims, seed):
    shape, axis = case
    check(device, lambda x: x.sum(axis=axis, keepdims=keepdims), values(seed, shape))
    check(device, lambda x: x.mean(axis=axis, keepdims=keepdims), values(seed, shape))


@given(case=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_max_without_ties(device, case, keepdims, seed):
    shape, axis = case
    check(device, lambda x: x.max(axis=axis, keepdims=keepdims), distinct(seed, shape))


def test_max_shares_gradient_between_ties(device):
    x = nn.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], device=device, requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [0.5, 0, 0.5]])


@st.composite
def matmul_shapes(draw):
    m, k, n = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["2d", "vector-left", "vector-right", "batched", "broadcast-batch"]))
    if kind == "2d":
        return (m, k), (k, n)
    if kind == "vector-left":
        return (k,), (k, n)
    if kind == "vector-right":
        return (m, k), (k,)
    batch = draw(st.integers(1, 3))
    if kind == "batched":
        return (batch, m, k), (batch, k, n)
    return (batch, m, k), (k, n)


@given(shapes=matmul_shapes(), seed=seeds)
def test_matmul(device, shapes, seed):
    check(device, lambda a, b: a @ b, values(seed, shapes[0]), values(seed + 1, shapes[1]))


RESHAPES = [((6,), (2, 3)), ((2, 3), (3, 2)), ((2, 3), (1, 6, 1)), ((3, 2, 2), (-1, 2)), ((3, 2, 2), (12,))]


@given(case=st.sampled_from(RESHAPES), seed=seeds)
def test_reshape(device, case, seed):
    shape, target = case
    check(device, lambda x: x.reshape(target) * 1.5, values(seed, shape))


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple), data=st.data())
def test_transpose(device, shape, data):
    axes = tuple(data.draw(st.permutations(range(len(shape)))))
    check(device, lambda x: x.transpose(axes), values(0, shape))
    check(device, lambda x: x.T, values(1, shape))


INDICES = [
    (slice(1, 3),),
    (Ellipsis, 0),
    (slice(None, None, -1), slice(None), None),
    (np.array([0, 2, 0]),),  # a repeated index: its gradients must add up
    (np.array([1, 0]), np.array([2, 2])),
    (np.array([[True, False, True, False], [False, True, True, True], [True, True, False, False]]),),
    (1, slice(0, 4, 2)),
]


@pytest.mark.parametrize("index", INDICES, ids=[f"index{i}" for i in range(len(INDICES))])
def test_getitem(device, index):
    check(device, lambda x: x[index], values(3, (3, 4)))


def test_getitem_with_tensor_index(device):
    idx = nn.tensor(np.array([2, 2, 1]), device=device)
    check(device, lambda x: x[idx], values(5, (4, 2)))


@given(case=shape_and_axis(), seed=seeds)
def test_softmax_and_log_softmax(device, case, seed):
    shape, axis = case
    axis = axis if isinstance(axis, int) else -1
    check(device, lambda x: x.softmax(axis), values(seed, shape, -3, 3))
    check(device, lambda x: x.log_softmax(axis), values(seed, shape, -3, 3))


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("bias", [True, False])
@given(n=st.integers(1, 4), n_in=st.integers(1, 4), n_out=st.integers(1, 4), seed=seeds)
def test_linear(device, activation, bias, n, n_in, n_out, seed):
    x, w, b = values(seed, (n, n_in)), values(seed + 1, (n_in, n_out)), values(seed + 2, (n_out,))
    if activation == "relu":  # finite differences are wrong at relu's kink: keep away from z = 0
        assume(np.abs(x @ w + (b if bias else 0)).min() > 1e-3)
    if bias:
        check(device, lambda x, w, b: F.linear(x, w, b, activation), x, w, b)
    else:
        check(device, lambda x, w: F.linear(x, w, None, activation), x, w)


@pytest.mark.parametrize("kind", sorted(TARGET_KINDS))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(n=st.integers(1, 4), c=st.integers(1, 5), seed=seeds)
def test_softmax_cross_entropy(device, kind, reduction, n, c, seed):
    rng = np.random.default_rng(seed)
    targets = nn.tensor(TARGET_KINDS[kind](rng, n, c), device=device,
                        dtype=np.int64 if kind == "class-index" else np.float64)
    check(device, lambda z: F.softmax_cross_entropy(z, targets, reduction), values(seed, (n, c), -3, 3))


def test_cast_passes_gradient_back_in_the_input_dtype(device):
    x = nn.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x.astype("float64") * 3).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_move_between_devices_is_differentiable(device):
    other = "numpy" if device != "numpy" else "cpu"
    check(device, lambda x: (x.to(other) * 2).to(device), values(0, (2, 3)))


@given(shape=small_shapes, seed=seeds)
def test_composite_expression_reuses_inputs(device, shape, seed):
    # x appears on several paths: its gradient is the sum over all of them.
    check(device, lambda x, y: (x * y + x.tanh() * x - y / (1 + x * x)).sum(), values(seed, shape),
          values(seed + 1, shape))
