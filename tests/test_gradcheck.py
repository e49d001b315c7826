"""nnengine.gradcheck itself: it passes right derivatives and catches and locates wrong ones."""
import numpy as np
import pytest

import nnengine as nn
from nnengine.autograd import Function


class WrongSquare(Function):
    """y = x^2 with a deliberately wrong derivative at one element (index 1, 2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.mul(x, x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        grad = ctx.backend.mul(g, ctx.backend.mul(x, ctx.backend.full((), 2, x.dtype)))
        grad = ctx.backend.copy(grad)
        grad[1, 2] *= 1.5
        return (grad,)


def test_passes_a_correct_gradient_and_reports_the_worst_element():
    result = nn.gradcheck(lambda a, b: (a * b).exp(), np.ones((2, 2)) * 0.3, np.arange(4.0).reshape(2, 2))
    assert result and result.passed
    assert result.input_index in (0, 1) and len(result.index) == 2
    assert "passed" in str(result)


def test_catches_a_wrong_gradient_and_names_input_index_and_values():
    x = np.random.default_rng(0).uniform(0.5, 1.5, (3, 4))
    with pytest.raises(nn.GradcheckError, match=r"input 0 at index \(1, 2\): analytic .* numeric"):
        nn.gradcheck(WrongSquare.apply, x)
    result = nn.gradcheck(WrongSquare.apply, x, raise_on_failure=False)
    assert not result and result.index == (1, 2)
    np.testing.assert_allclose(result.analytic / result.numeric, 1.5, rtol=1e-6)


def test_catches_a_missing_gradient():
    # fn ignores the graph for y: the analytic gradient of y is absent, the numeric one is not.
    def detached(x, y):
        return x * y.detach()

    result = nn.gradcheck(detached, np.ones(3), np.full(3, 2.0), raise_on_failure=False)
    assert not result and result.input_index == 1


def test_constants_are_not_checked_and_inputs_are_float64():
    seen = []

    def fn(x, idx, c):
        seen.append((x.dtype, idx.dtype, c.requires_grad))
        return x[idx] * c

    x = nn.tensor([1.0, 2.0, 3.0], requires_grad=True)  # float32: checked as a float64 copy
    c = nn.tensor([2.0, 3.0])  # a Tensor without requires_grad is a constant
    assert nn.gradcheck(fn, x, np.array([2, 0]), c)
    assert seen[0] == (np.float64, np.int64, False)
    assert x.grad is None  # the caller's tensor is untouched


def test_fn_must_return_a_tensor():
    with pytest.raises(TypeError, match="must return a Tensor"):
        nn.gradcheck(lambda x: 1.0, np.ones(2))
