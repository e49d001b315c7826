"""Gradient checking by central finite differences in float64.

For f with a tensor output y, gradcheck draws a fixed random cotangent v and
compares the gradient of the scalar s(x) = sum(v * f(x)), found by backward(),
with the central difference (s(x + eps e_k) - s(x - eps e_k)) / (2 eps) for
every element k of every checked input. One backward checks the whole
vector-Jacobian product, so any wrong entry of the Jacobian shows up.
"""
from dataclasses import dataclass

import numpy as np

from .autograd import no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by gradcheck when an analytic gradient disagrees with the numeric one."""


@dataclass
class GradcheckResult:
    """The outcome of ``gradcheck``; true when it passed.

    Attributes:
        passed: whether every element was within tolerance.
        input_index: which input held the worst element.
        index: that element's index (a tuple).
        analytic, numeric: the two derivatives there.
        excess: |analytic - numeric| / (atol + rtol * |numeric|); above 1 fails.
    """

    passed: bool
    input_index: object
    index: object
    analytic: float
    numeric: float
    excess: float

    def __bool__(self):
        return self.passed

    def __str__(self):
        verdict = "passed" if self.passed else "FAILED"
        if self.input_index is None:
            return f"gradcheck {verdict}: no input to check"
        return (f"gradcheck {verdict}: worst element is input {self.input_index} at index {self.index}: "
                f"analytic {self.analytic:.8g}, numeric {self.numeric:.8g} "
                f"({self.excess:.3g} x the tolerance)")

    __repr__ = __str__


def _prepare(inputs):
    """float64 copies of the inputs; returns (tensors, indices of those to check)."""
    tensors, checked = [], []
    for i, value in enumerate(inputs):
        if isinstance(value, Tensor):
            check = value.requires_grad
            device = value.device
            host = value.numpy()
        else:
            host = np.asarray(value)
            check = host.dtype.kind == "f"
            device = None
        if host.dtype.kind == "f":
            host = host.astype(np.float64)
            tensors.append(Tensor(host, device=device, requires_grad=check))
        else:
            tensors.append(Tensor(host, device=device))
        if check:
            checked.append(i)
    return tensors, checked


def _call(fn, tensors):
    """f(inputs), which must be a Tensor."""
    out = fn(*tensors)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    return out


def _scalar(fn, tensors, cotangent):
    """s = sum(v * f(inputs)) as a Tensor."""
    return (_call(fn, tensors) * cotangent).sum()


def _numeric_gradient(fn, tensors, position, cotangent, eps):
    """Central differences of s with respect to every element of input ``position``."""
    base = tensors[position].numpy()
    grad = np.zeros_like(base)
    device = tensors[position].device
    with no_grad():
        for k in np.ndindex(*base.shape):
            values = []
            for sign in (1.0, -1.0):
                shifted = base.copy()
                shifted[k] += sign * eps
                trial = list(tensors)
                trial[position] = Tensor(shifted, device=device)
                values.append(_scalar(fn, trial, cotangent).item())
            grad[k] = (values[0] - values[1]) / (2 * eps)
    return grad


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_on_failure=True):
    """Check the gradients of ``fn`` at ``inputs`` against central differences in float64.

    Args:
        fn: a function of tensors returning a Tensor.
        *inputs: Tensors or array-likes. Float Tensors with ``requires_grad`` and
            float arrays are checked (as float64 copies); everything else is a constant.
        eps: the finite-difference step.
        atol, rtol: an element passes when |analytic - numeric| <= atol + rtol * |numeric|.
        seed: seeds the random cotangent.
        raise_on_failure: raise GradcheckError (naming the worst element) instead of returning.

    Returns:
        A GradcheckResult, true when every element passed, describing the worst one.
    """
    tensors, checked = _prepare(inputs)
    out = _call(fn, tensors)
    rng = np.random.default_rng(seed)
    cotangent = Tensor(rng.standard_normal(out.shape), dtype=np.float64, device=out.device)
    (out * cotangent).sum().backward()
    worst = GradcheckResult(True, None, None, 0.0, 0.0, 0.0)
    for position in checked:
        grad = tensors[position].grad
        analytic = np.zeros(tensors[position].shape) if grad is None else grad.numpy()
        numeric = _numeric_gradient(fn, tensors, position, cotangent, eps)
        excess = np.abs(analytic - numeric) / (atol + rtol * np.abs(numeric))
        excess = np.where(np.isnan(excess), np.inf, excess)  # a nan on either side fails
        if excess.size and (worst.input_index is None or excess.max() > worst.excess):
            k = np.unravel_index(int(np.argmax(excess)), excess.shape)
            worst = GradcheckResult(bool(excess.max() <= 1), position, tuple(int(i) for i in k),
                                    float(analytic[k]), float(numeric[k]), float(excess[k]))
    if raise_on_failure and not worst.passed:
        raise GradcheckError(str(worst))
    return worst
