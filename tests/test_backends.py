"""Every backend implements every primitive and agrees with the numpy reference.

CASES holds, for each primitive of the Backend interface, a maker of arguments
from a random generator, a dtype and hypothesis-drawn sizes. A new primitive
without a case fails ``test_every_primitive_has_a_case``, so nothing escapes the
comparison. In-place primitives are compared on the arrays they modify.
"""
import inspect
import math

import numpy as np
import pytest
from conftest import tolerance
from helpers import broadcast_pairs, seeds
pytest.importorskip("hypothesis")        # property tests: skipped where hypothesis is missing
from hypothesis import given
from hypothesis import strategies as st

import nnengine as nn
from nnengine.backends import Backend, NumpyBackend, registered_backends
from nnengine.backends.optimizer_scalars import nadam_momentum_factor
from nnengine.conv_layers import window_positions

REFERENCE = NumpyBackend("numpy")


def arr(rng, shape, dtype, low=-2.0, high=2.0):
    return rng.uniform(low, high, size=shape).astype(dtype)


def positive(rng, shape, dtype):
    return arr(rng, shape, dtype, 0.1, 3.0)


def unary(make=arr):
    return lambda r, d, s: (make(r, s.a, d),)


def binary(make_b=arr):
    return lambda r, d, s: (arr(r, s.a, d), make_b(r, s.b, d))


def compare_op(r, d, s):
    # equal values are common; np.asarray: rounding a 0-d array gives a numpy scalar, not a host array
    return np.asarray(np.round(arr(r, s.a, d))), np.asarray(np.round(arr(r, s.b, d)))


def dense(r, d, s, activation="relu", bias=True):
    x, w = arr(r, (s.n, s.k), d), arr(r, (s.k, s.c), d)
    return x, w, (arr(r, (s.c,), d) if bias else None), activation


def dense_backward(r, d, s):
    x, w, b, activation = dense(r, d, s, s.activation, s.flag)
    out = REFERENCE.dense_forward(x, w, b, activation)
    return x, w, out, arr(r, out.shape, d), activation, s.flag


def argmax_matches(r, d, s):
    """Predictions (n, k, c) with ties (rounded) and NaN; integer labels (n, k) or target rows (n, k, c)."""
    predictions = np.round(arr(r, (s.n, s.k, s.c), d))
    predictions[r.random(predictions.shape) < 0.1] = np.nan
    targets = r.integers(0, s.c, (s.n, s.k)) if s.flag else np.round(arr(r, (s.n, s.k, s.c), d))
    return predictions, targets


def activation_backward(r, d, s):
    x = arr(r, (s.n, s.k, s.c), d, -3, 3)
    axis = s.n % 3
    out = REFERENCE.softmax(x, axis) if s.activation == "softmax" else REFERENCE._activate(x, s.activation)
    return out, arr(r, x.shape, d), s.activation, axis


def xent(r, d, s):
    logits = arr(r, (s.n, s.c), d, -5, 5)
    targets = r.integers(0, s.c, s.n) if s.flag else r.uniform(0, 2, (s.n, s.c)).astype(d)
    return logits, targets, True


def state(r, d, s, count):
    return tuple(arr(r, (s.n, s.c), d) for _ in range(count))


def lion_state(r, d, s):
    """(param, grad, m) where some entries blend to exactly 0 (m = g = 0), so the sign's 0 case is checked."""
    param, grad, m = state(r, d, s, 3)
    grad.reshape(-1)[::3] = 0
    m.reshape(-1)[::3] = 0
    return param, grad, m


def adam_group(r, d, s):
    """(params, grads, ms, vs, v_maxes) of three parameters, v_maxes None unless s.flag (AMSGrad)."""
    shapes = [(s.n, s.c), (s.c,), (s.k, s.n, s.c)]
    rows = [(arr(r, shape, d), arr(r, shape, d), arr(r, shape, d), np.abs(arr(r, shape, d)),
             np.abs(arr(r, shape, d)) if s.flag else None) for shape in shapes]
    return tuple(tuple(column) for column in zip(*rows))


def windows(r, d, s):
    """(x (n, s, c) with ties, positions, window, s) of a geometry drawn from the sizes: odd sizes, strides
    larger than the window, 1-wide windows, 'same' padding (s.flag) with strides."""
    height, width = s.k + 2, s.n + 1
    kernel = (min(s.c, height), 1 + s.n % 2)
    strides = (1 + s.c % 3, 1 + s.k % 3)
    _, _, positions, _ = window_positions(height, width, kernel, strides, (1, 1), "same" if s.flag else "valid")
    x = np.round(arr(r, (s.n, height * width, s.c), d) * 2) / 2
    return x, np.array(positions), kernel[0] * kernel[1], height * width


def max_pool_backward(r, d, s):
    x, positions, window, size = windows(r, d, s)
    out, chosen = REFERENCE.max_pool(x, positions, window)
    return arr(r, out.shape, d), chosen, positions, window, size


def statistics(r, d, s):
    """x (m, c) far from zero mean, its moments over axis (s.flag: 0), gamma and beta (or None)."""
    axis = 0 if s.flag else 1
    x = arr(r, (s.n + s.k, s.c), d) + 3.0
    mean, variance = REFERENCE.moments(x, axis)
    affine = s.activation != "none"
    return x, mean, variance, arr(r, (s.c,), d) if affine else None, arr(r, (s.c,), d) if affine else None, axis


def normalize_backward(r, d, s):
    x, mean, variance, gamma, _, axis = statistics(r, d, s)
    return x, mean, variance, gamma, arr(r, x.shape, d), 1e-3, axis, s.activation != "relu" or axis == 1


#: the cell a recurrent case runs, by the drawn activation (so that every cell and both GRU forms are drawn)
_CELLS = {"none": "simple_rnn", "relu": "lstm", "sigmoid": "gru", "tanh": "lstm", "softmax": "gru"}


def recurrent_case(r, d, s, backward=False):
    """A sequence of s.n steps of s.c samples, s.k units; the backward case starts from the reference's forward."""
    cell = _CELLS[s.activation]
    gates = {"simple_rnn": 1, "lstm": 4, "gru": 3}[cell]
    reset_after = s.flag or cell != "gru"
    reverse = (not s.flag) if cell != "gru" else s.n % 2 == 0
    activation = "relu" if s.activation == "tanh" else "tanh"
    p, kernel = arr(r, (s.n, s.c, gates * s.k), d), arr(r, (s.k, gates * s.k), d, -0.7, 0.7)
    bias = arr(r, (2, 3 * s.k), d) if cell == "gru" and reset_after and s.n != 2 else None
    # recurrent dropout's masks (0 or 1 / (1 - 0.25)), one per gate, for an odd number of units
    masks = ((r.random((gates, s.c, s.k)) >= 0.25) / 0.75).astype(d) if s.k % 2 == 1 else None
    args = (cell, p, kernel, bias, activation, "sigmoid", reverse, reset_after, masks)
    if not backward:
        return args
    states, _, cache = REFERENCE.recurrent_forward(*args)
    grad = arr(r, (s.n, s.c, s.k) if s.n % 2 else (s.c, s.k), d)      # every state's gradient, or the last one's
    return cell, kernel, bias, states, cache, grad, activation, "sigmoid", reverse, reset_after, masks


CASES = {
    "from_numpy": unary(),
    "to_numpy": unary(),
    "full": lambda r, d, s: (s.a, 1.5, d),
    "copy": unary(),
    "astype": lambda r, d, s: (arr(r, s.a, d), np.dtype(np.float64 if d == np.float32 else np.float32)),
    "ascontiguous": lambda r, d, s: (arr(r, (s.n, s.c), d).T,),
    "reshape": lambda r, d, s: (arr(r, (s.n, s.c), d), (s.c, s.n)),
    "transpose": lambda r, d, s: (arr(r, (s.n, s.k, s.c), d), (2, 0, 1)),
    "broadcast_to": lambda r, d, s: (arr(r, (1, s.c), d), (s.n, s.c)),
    "getitem": lambda r, d, s: (arr(r, (s.n, s.c), d), (r.integers(0, s.n, 5), slice(None, None, -1))),
    "index_add": lambda r, d, s: (np.zeros((s.n, s.c), d), (r.integers(0, s.n, 5),), arr(r, (5, s.c), d)),
    "assign": lambda r, d, s: (arr(r, (s.n, s.c), d), arr(r, (1, s.c) if s.flag else (s.n, s.c), d)),
    "neg": unary(), "exp": unary(), "log": unary(positive), "sqrt": unary(positive), "tanh": unary(),
    "sigmoid": lambda r, d, s: (arr(r, s.a, d, -50, 50),), "relu": unary(), "erf": unary(),
    "add": binary(), "sub": binary(), "mul": binary(), "div": binary(positive),
    "power": lambda r, d, s: (positive(r, s.a, d), arr(r, s.b, d)),
    "maximum": compare_op, "minimum": compare_op,
    "equal": compare_op, "not_equal": compare_op, "less": compare_op, "less_equal": compare_op,
    "greater": compare_op, "greater_equal": compare_op,
    "where": lambda r, d, s: (r.random(s.a) > 0.5, arr(r, s.a, d), arr(r, s.b, d)),
    "sum": lambda r, d, s: (arr(r, (s.n, s.k, s.c), d), (0, 2), s.flag),
    "max": lambda r, d, s: (arr(r, (s.n, s.k, s.c), d), (1,), s.flag),
    "argmax": lambda r, d, s: (np.round(arr(r, (s.n, s.c), d)), 1),
    "argmax_matches": argmax_matches,
    "matmul": lambda r, d, s: (arr(r, (s.k, s.n), d), arr(r, (s.c, s.k), d), True, True),
    "dense_forward": lambda r, d, s: dense(r, d, s, s.activation, s.flag),
    "dense_backward": dense_backward,
    "activation_backward": activation_backward,
    "softmax": lambda r, d, s: (arr(r, (s.n, s.c), d, -30, 30), 1),
    "log_softmax": lambda r, d, s: (arr(r, (s.n, s.c), d, -30, 30), 0),
    "softmax_cross_entropy": xent,
    "window_gather": lambda r, d, s: (*windows(r, d, s)[:2], -1.5),
    "window_scatter": lambda r, d, s: (lambda x, p, w, size: (arr(r, (s.n, p.size, s.c), d), p, size))(
        *windows(r, d, s)),
    "max_pool": lambda r, d, s: windows(r, d, s)[:3],
    "max_pool_backward": max_pool_backward,
    "average_pool": lambda r, d, s: windows(r, d, s)[:3],
    "average_pool_backward": lambda r, d, s: (lambda x, p, w, size: (
        arr(r, (s.n, p.size // w, s.c), d), p, w, size))(*windows(r, d, s)),
    "moments": lambda r, d, s: (arr(r, (s.n + s.k, s.c), d) * 5 + 100, 0 if s.flag else 1),
    "normalize": lambda r, d, s: (lambda x, m, v, g, b, axis: (x, m, v, g, b, 1e-3, axis))(*statistics(r, d, s)),
    "normalize_backward": normalize_backward,
    "sgd_update": lambda r, d, s: (*state(r, d, s, 3), 0.1, 0.9, s.flag, 0.01),
    # param, grad, m, v >= 0, v_max >= 0, step, lr, beta_1, beta_2, epsilon, amsgrad, weight_decay
    "adam_update": lambda r, d, s: (*state(r, d, s, 3), *np.abs(state(r, d, s, 2)),
                                    3, 0.01, 0.9, 0.999, 1e-7, s.flag, 0.004),
    # three parameters of different shapes, each with its param, grad, m, v >= 0 (v_max >= 0 with amsgrad)
    "adam_update_many": lambda r, d, s: (*adam_group(r, d, s), 3, 0.01, 0.9, 0.999, 1e-7, s.flag, 0.004),
    # param, grad, mean_square, mean_grad (small enough that mean_square > mean_grad**2), velocity, ...
    "rmsprop_update": lambda r, d, s: (*state(r, d, s, 2), np.abs(state(r, d, s, 1)[0]) + 1,
                                       state(r, d, s, 1)[0] * 0.3, state(r, d, s, 1)[0],
                                       0.01, 0.9, 0.5, 1e-7, s.flag, 0.0),
    "adagrad_update": lambda r, d, s: (*state(r, d, s, 2), np.abs(state(r, d, s, 1)[0]), 0.01, 1e-7, 0.0),
    # param, grad, m, u >= 0, step, lr, beta_1, beta_2, epsilon, weight_decay
    "adamax_update": lambda r, d, s: (*state(r, d, s, 3), np.abs(state(r, d, s, 1)[0]), 3, 0.01, 0.9, 0.999, 1e-7,
                                      0.004),
    # param, grad, m, v >= 0, step, u_product (of steps 1..step with beta_1 0.9), lr, beta_1, beta_2, epsilon, wd
    "nadam_update": lambda r, d, s: (*state(r, d, s, 3), np.abs(state(r, d, s, 1)[0]), 3,
                                     math.prod(nadam_momentum_factor(t, 0.9) for t in (1, 2, 3)), 0.01, 0.9, 0.999,
                                     1e-7, 0.004),
    # param, grad, m, lr, beta_1, beta_2, weight_decay (a zero and a NaN-free blend: sign's three cases)
    "lion_update": lambda r, d, s: (*lion_state(r, d, s), 0.01, 0.9, 0.99, 0.004),
    # param, grad, accumulated_grad >= 0, accumulated_delta >= 0, lr, rho, epsilon, weight_decay
    "adadelta_update": lambda r, d, s: (*state(r, d, s, 2), *np.abs(state(r, d, s, 2)), 1.0, 0.95, 1e-7, 0.004),
    # param, grad, accumulator > 0, linear, lr, learning_rate_power, l1, l2, l2_shrinkage, beta, weight_decay
    # (l1 0.05: some linear terms inside [-l1, l1], weights exactly 0, and some outside)
    "ftrl_update": lambda r, d, s: (*state(r, d, s, 2), np.abs(state(r, d, s, 1)[0]) + 0.1, state(r, d, s, 1)[0] * 0.1,
                                    0.05, -0.5, 0.05, 0.01, 0.02, 0.1, 0.004),
    "recurrent_forward": recurrent_case,
    "recurrent_backward": lambda r, d, s: recurrent_case(r, d, s, backward=True),
}

IN_PLACE = {"index_add", "assign", "sgd_update", "adam_update", "adam_update_many", "rmsprop_update",
            "adagrad_update", "adamax_update", "nadam_update", "lion_update", "adadelta_update", "ftrl_update"}


class Sizes:
    """Hypothesis-drawn sizes shared by the case makers."""

    def __init__(self, shapes, n, k, c, flag, activation):
        self.a, self.b = shapes
        self.n, self.k, self.c, self.flag, self.activation = n, k, c, flag, activation


sizes = st.builds(Sizes, broadcast_pairs(), st.integers(1, 5), st.integers(1, 5), st.integers(1, 5),
                  st.booleans(), st.sampled_from(["none", "relu", "sigmoid", "tanh", "softmax"]))


def backend_classes():
    """The class behind every registered device kind that is available here."""
    kinds = [kind for kind in registered_backends() if nn.is_device_available(kind)]
    return sorted({type(nn.get_backend(kind)) for kind in kinds}, key=lambda c: c.__name__)


def test_numba_backend_runs_its_own_kernel_for_every_compute_primitive():
    from nnengine.backends.numba_backend import NUMPY_PRIMITIVES, NumbaBackend
    assert type(nn.get_backend("cpu")) is NumbaBackend
    inherited = [name for name in Backend.primitives() if name not in NUMPY_PRIMITIVES and
                 getattr(NumbaBackend, name) in (getattr(NumpyBackend, name), getattr(Backend, name))]
    assert not inherited, f"NumbaBackend inherits numpy's {inherited}"
    assert all(getattr(NumbaBackend, name) is getattr(NumpyBackend, name) for name in NUMPY_PRIMITIVES)


def test_the_reference_backend_is_the_interface_defaults():
    # the numpy backend implements the general primitives and inherits every fused one: the
    # defaults in base.py are the specification that every override is compared with below
    assert set(Backend.fused_primitives()) >= {"dense_forward", "dense_backward", "activation_backward", "softmax",
                                               "log_softmax", "softmax_cross_entropy", "sgd_update", "adam_update",
                                               "rmsprop_update", "adagrad_update"}
    for name in Backend.fused_primitives():
        assert getattr(NumpyBackend, name) is getattr(Backend, name), f"NumpyBackend overrides the reference {name}"
    assert not set(Backend.general_primitives()) & set(Backend.fused_primitives())


def test_every_primitive_has_a_case():
    assert set(CASES) == set(Backend.primitives())


def test_every_primitive_is_documented():
    for name in Backend.primitives():
        doc = inspect.getdoc(getattr(Backend, name))
        assert doc and len(doc) > 20, f"Backend.{name} needs a docstring stating its contract"


@pytest.mark.parametrize("cls", backend_classes(), ids=lambda c: c.__name__)
def test_backend_implements_every_primitive(cls):
    assert not inspect.isabstract(cls), f"{cls.__name__} leaves {sorted(cls.__abstractmethods__)} abstract"
    for name in Backend.general_primitives():
        assert getattr(cls, name) is not getattr(Backend, name), f"{cls.__name__}.{name} is not implemented"
    if cls is not NumpyBackend:   # a fast backend overrides every fused reference with its kernels
        for name in Backend.fused_primitives():
            assert getattr(cls, name) is not getattr(Backend, name), f"{cls.__name__}.{name} keeps the reference"


def _to_backend(backend, value):
    if isinstance(value, np.ndarray):
        return backend.from_numpy(value)
    if isinstance(value, tuple):
        return tuple(_to_backend(backend, v) for v in value)
    return value


def run(backend, name, args):
    """Call primitive ``name`` on ``backend``; return its result and, if in place, the modified arrays."""
    if name in ("from_numpy", "to_numpy"):  # a round trip through the device
        return (backend.to_numpy(backend.from_numpy(args[0])),)
    on_device = [_to_backend(backend, a) for a in args]
    result = getattr(backend, name)(*on_device)
    if name in IN_PLACE:
        arrays = [b for a in on_device for b in (a if isinstance(a, tuple) else (a,))]
        return tuple(backend.to_numpy(a) for a in arrays if a is not None and hasattr(a, "shape"))
    results = result if isinstance(result, tuple) else (result,)
    return tuple(None if r is None else backend.to_numpy(backend.ascontiguous(r)) for r in results)


def assert_agrees_with_reference(backend, name, args, dtype):
    """Primitive ``name`` on ``backend`` gives the reference's results: shapes, dtypes and values."""
    expected = run(REFERENCE, name, args)
    got = run(backend, name, args)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        if e is None:
            assert g is None
            continue
        assert g.shape == e.shape and g.dtype == e.dtype, f"{name}: {g.shape} {g.dtype} vs {e.shape} {e.dtype}"
        np.testing.assert_allclose(g, e, **tolerance(dtype))


@pytest.mark.parametrize("name", sorted(CASES))
@given(s=sizes, seed=seeds)
def test_primitive_agrees_with_numpy_reference(device, float_dtype, name, s, seed):
    args = CASES[name](np.random.default_rng(seed), float_dtype, s)
    assert_agrees_with_reference(nn.get_backend(device), name, args, float_dtype)


@pytest.mark.parametrize("name", ["reshape", "transpose", "broadcast_to", "getitem", "index_add"])
def test_view_primitives_leave_their_input_unchanged(device, name):
    backend = nn.get_backend(device)
    args = CASES[name](np.random.default_rng(0), np.dtype(np.float32), Sizes(((2,), (2,)), 3, 2, 4, True, "relu"))
    if name == "index_add":
        values = args[2].copy()
        run(backend, name, args)
        np.testing.assert_array_equal(args[2], values)
    else:
        original = args[0].copy()
        run(backend, name, args)
        np.testing.assert_array_equal(args[0], original)


@pytest.mark.parametrize("index", [(slice(None), np.array([1, -1, 1])), (slice(None), slice(None), np.array([[0, 4], [2, 2]])),
                                   np.array([2, 0]), (slice(None), np.array(2)), (slice(None), np.array([True, False, True, True]))])
def test_a_gather_between_full_slices_gives_numpys_values_contiguous(device, index):
    backend = nn.get_backend(device)
    x = np.arange(60.0).reshape(3, 4, 5)
    got = backend.getitem(backend.from_numpy(x), index if not isinstance(index, tuple) else
                          tuple(backend.from_numpy(p) if isinstance(p, np.ndarray) else p for p in index))
    expected = x[index]
    assert got.shape == expected.shape
    np.testing.assert_array_equal(backend.to_numpy(got), expected)
    if device != "cuda" and np.asarray(index[-1] if isinstance(index, tuple) else index).dtype != bool:
        assert got.flags.c_contiguous          # the im2col patches reshape without a copy


@pytest.mark.parametrize("axis", [0, 1])
def test_moments_stay_exact_to_float32_when_the_mean_dwarfs_the_spread(device, axis):
    # sum-of-squares formulas lose every digit here (numpy's float32 var is off by 40x); ours may not
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((700, 600)) + 1e4).astype(np.float32)
    x[0] += 50.0                                   # an outlier as the first row: the shifted sweep's centre
    backend = nn.get_backend(device)
    mean, variance = (backend.to_numpy(a) for a in backend.moments(backend.from_numpy(x), axis))
    exact = x.astype(np.float64)
    np.testing.assert_allclose(variance, exact.var(axis), rtol=2e-3)
    np.testing.assert_allclose(mean, exact.mean(axis), rtol=4e-6)
