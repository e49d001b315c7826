"""Fused functional ops against formulas written out here, and optimizer steps against Keras's formulas."""
import numpy as np
import pytest
from helpers import TARGET_KINDS, seeds
pytest.importorskip("hypothesis")        # property tests: skipped where hypothesis is missing
from hypothesis import given
from hypothesis import strategies as st

import nnengine as nn
import nnengine.functional as F


def np_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS = {
    None: lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "softmax": np_softmax,
}


@pytest.mark.parametrize("activation", list(ACTIVATIONS), ids=str)
@given(n=st.integers(1, 6), n_in=st.integers(1, 6), n_out=st.integers(1, 6), seed=seeds)
def test_linear_matches_the_dense_formula(device, float_dtype, activation, n, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    x, w, b = (rng.standard_normal(s).astype(float_dtype) for s in ((n, n_in), (n_in, n_out), (n_out,)))
    out = F.linear(*(nn.tensor(a, device=device) for a in (x, w, b)), activation=activation)
    assert out.dtype == float_dtype and out.shape == (n, n_out)
    expected = ACTIVATIONS[activation](x.astype(np.float64) @ w + b)
    tol = 1e-5 if float_dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.numpy(), expected, rtol=tol, atol=tol)


def test_linear_without_bias_and_first_layer_skips_input_gradient(device):
    x = nn.tensor(np.ones((2, 3)), device=device)
    w = nn.tensor(np.full((3, 4), 0.5), device=device, requires_grad=True)
    out = F.linear(x, w, None, "relu")
    np.testing.assert_allclose(out.numpy(), np.full((2, 4), 1.5))
    out.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.full((3, 4), 2.0))
    assert x.grad is None


def xent_reference(z, t):
    """-sum_j t_j log softmax(z)_j per row, in float64 by direct formula."""
    log_p = np.log(np_softmax(z.astype(np.float64)))
    if t.ndim == 1:
        t = np.eye(z.shape[1])[t]
    return -(t * log_p).sum(axis=1)


@pytest.mark.parametrize("kind", sorted(TARGET_KINDS))
@given(n=st.integers(1, 6), c=st.integers(2, 6), seed=seeds)
def test_softmax_cross_entropy_values_and_gradient(device, float_dtype, kind, n, c, seed):
    rng = np.random.default_rng(seed)
    z = rng.uniform(-4, 4, (n, c)).astype(float_dtype)
    t = TARGET_KINDS[kind](rng, n, c)
    t = t.astype(float_dtype) if kind != "class-index" else t
    logits = nn.tensor(z, device=device, requires_grad=True)
    losses = F.softmax_cross_entropy(logits, t, reduction="none")
    tol = dict(rtol=1e-5, atol=1e-5) if float_dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(losses.numpy(), xent_reference(z, t), **tol)
    F.softmax_cross_entropy(logits, t).backward()  # mean over rows
    dense_t = np.eye(c)[t] if kind == "class-index" else t.astype(np.float64)
    # dL/dz = (p * sum(t) - t) / n: for targets that do not sum to 1 this is NOT p - t.
    expected = (np_softmax(z.astype(np.float64)) * dense_t.sum(1, keepdims=True) - dense_t) / n
    np.testing.assert_allclose(logits.grad.numpy(), expected, **tol)


def test_softmax_cross_entropy_is_stable_for_huge_logits(device):
    logits = nn.tensor([[1e4, -1e4, 0.0], [-3e4, 3e4, 3e4]], device=device, requires_grad=True)
    loss = F.softmax_cross_entropy(logits, [1, 0], reduction="none")
    np.testing.assert_allclose(loss.numpy(), [2e4, 6e4 + np.log(2)], rtol=1e-6)  # lse - z_target
    loss.sum().backward()
    assert np.all(np.isfinite(logits.grad.numpy()))


def test_softmax_cross_entropy_reductions_agree(device):
    logits = nn.tensor(np.random.default_rng(0).standard_normal((5, 3)), device=device)
    targets = [0, 2, 1, 1, 0]
    per_row = F.softmax_cross_entropy(logits, targets, "none").numpy()
    np.testing.assert_allclose(F.softmax_cross_entropy(logits, targets, "sum").item(), per_row.sum(), rtol=1e-6)
    np.testing.assert_allclose(F.softmax_cross_entropy(logits, targets).item(), per_row.mean(), rtol=1e-6)


# ----------------------------------------------------------------------
# Optimizer steps against Keras's formulas, written out independently
# ----------------------------------------------------------------------
def keras_adam(p, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, wd=0.0):
    m = v = v_hat = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        p = p - p * wd * lr
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_hat = np.maximum(v_hat, v) if amsgrad else v
        p = p - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v_hat) + eps)
    return p


def keras_sgd(p, grads, lr=0.01, momentum=0.0, nesterov=False, wd=0.0):
    velocity = np.zeros_like(p)
    for g in grads:
        p = p - p * wd * lr
        if momentum == 0:
            p = p - lr * g
            continue
        velocity = momentum * velocity - lr * g
        p = p + (momentum * velocity - lr * g if nesterov else velocity)
    return p


def keras_rmsprop(p, grads, lr=0.001, rho=0.9, momentum=0.0, eps=1e-7, centered=False):
    ms = mg = vel = np.zeros_like(p)
    for g in grads:
        ms = rho * ms + (1 - rho) * g * g
        denominator = ms + eps
        if centered:
            mg = rho * mg + (1 - rho) * g
            denominator = ms - mg * mg + eps
        increment = lr * g / np.sqrt(denominator)
        if momentum > 0:
            vel = momentum * vel + increment
            p = p - vel
        else:
            p = p - increment
    return p


def keras_adagrad(p, grads, lr=0.001, eps=1e-7, initial=0.1):
    acc = np.full_like(p, initial)
    for g in grads:
        acc = acc + g * g
        p = p - lr * g / np.sqrt(acc + eps)
    return p


def run_steps(update, device, dtype, p0, grads, state_names, initial=None, **kwargs):
    param = nn.tensor(p0, dtype=dtype, device=device)
    state = {name: nn.full(p0.shape, (initial or {}).get(name, 0.0), dtype=dtype, device=device)
             for name in state_names}
    for step, g in enumerate(grads, start=1):
        extra = {"step": step} if update is F.adam_update else {}
        update(param, nn.tensor(g, dtype=dtype, device=device), **state, **extra, **kwargs)
    return param.numpy()


OPTIMIZER_CASES = [
    ("sgd", F.sgd_update, [], {}, keras_sgd, {}),
    ("sgd-momentum", F.sgd_update, ["velocity"], dict(momentum=0.9), keras_sgd, dict(momentum=0.9)),
    ("sgd-nesterov", F.sgd_update, ["velocity"], dict(momentum=0.9, nesterov=True), keras_sgd,
     dict(momentum=0.9, nesterov=True)),
    ("sgd-decay", F.sgd_update, [], dict(weight_decay=0.1), keras_sgd, dict(wd=0.1)),
    ("adam", F.adam_update, ["m", "v"], {}, keras_adam, {}),
    ("amsgrad", F.adam_update, ["m", "v", "v_max"], dict(amsgrad=True), keras_adam, dict(amsgrad=True)),
    ("adamw", F.adam_update, ["m", "v"], dict(weight_decay=0.004), keras_adam, dict(wd=0.004)),
    ("rmsprop", F.rmsprop_update, ["mean_square"], {}, keras_rmsprop, {}),
    ("rmsprop-centered-momentum", F.rmsprop_update, ["mean_square", "mean_grad", "velocity"],
     dict(centered=True, momentum=0.5), keras_rmsprop, dict(centered=True, momentum=0.5)),
    ("adagrad", F.adagrad_update, ["accumulator"], {}, keras_adagrad, {}),
]


@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=[c[0] for c in OPTIMIZER_CASES])
def test_optimizer_step_matches_keras_formula(device, float_dtype, case):
    _, update, state_names, kwargs, reference, reference_kwargs = case
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(5)]
    initial = {"accumulator": 0.1}
    got = run_steps(update, device, float_dtype, p0, grads, state_names, initial, **kwargs)
    expected = reference(p0, grads, **reference_kwargs)
    tol = 1e-5 if float_dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
    assert not np.allclose(got, p0)  # the step did move the parameters


def test_adam_epsilon_is_added_to_uncorrected_sqrt_v():
    # With tiny gradients the epsilon placement dominates: Keras's form differs from the textbook one.
    p0, grads = np.zeros(1), [np.array([1e-8])]
    got = run_steps(F.adam_update, "numpy", np.float64, p0, grads, ["m", "v"])
    textbook = -0.001 * 1e-8 / (1e-8 + 1e-7)  # m_hat / (sqrt(v_hat) + eps)
    np.testing.assert_allclose(got, keras_adam(p0, grads), rtol=1e-12)
    assert not np.allclose(got, textbook, rtol=1e-3)
