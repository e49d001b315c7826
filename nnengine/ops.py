"""The math of every differentiable operation: one ``Function`` per op, forward and backward.

Each derivative is written once, here, with backend primitives, except the activations' (relu,
sigmoid, tanh, softmax), whose one home is ``Backend.activation_backward``: the Functions below
and the fused dense backward both call it. This
module does no checking: the public front end, ``nnengine.functional``, validates arguments,
promotes dtypes and then calls ``SomeFunction.apply``. Broadcast gradients are summed back to
each input's shape by the autograd engine (``autograd.reduce_to_shape``), not here.

Notation in the comments: x, a, b are inputs, y the output, g = dL/dy.

One file of about 500 lines on purpose: it is the catalogue of every derivative, read side by side.
"""
import math

import numpy as np

from .autograd import Function
from .backends.constants import shared_constant
from .backends.layout import kept_shape


def constant(backend, value, dtype):
    """A new 0-d backend array holding ``value`` (a Tensor of its own may wrap it)."""
    return backend.full((), value, dtype)


class Cast(Function):
    """y = x converted to another dtype; g flows back cast to x's dtype by the engine."""

    @staticmethod
    def forward(ctx, x, dtype):
        return ctx.backend.astype(x, dtype)

    @staticmethod
    def backward(ctx, g):
        return (g,)


class ToDevice(Function):
    """y = x copied to another device; g is copied back."""

    @staticmethod
    def forward(ctx, x, target):
        ctx.output_backend = target
        return target.from_numpy(ctx.backend.to_numpy(x))

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.from_numpy(ctx.params["target"].to_numpy(g)),)


class Add(Function):
    """y = a + b;  da = g, db = g."""

    @staticmethod
    def forward(ctx, a, b):
        return ctx.backend.add(a, b)

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    """y = a - b;  da = g, db = -g."""

    @staticmethod
    def forward(ctx, a, b):
        return ctx.backend.sub(a, b)

    @staticmethod
    def backward(ctx, g):
        return g, (ctx.backend.neg(g) if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """y = a * b;  da = g * b, db = g * a."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.mul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        mul = ctx.backend.mul
        return (mul(g, b) if ctx.needs_input_grad[0] else None,
                mul(g, a) if ctx.needs_input_grad[1] else None)


class Div(Function):
    """y = a / b;  da = g / b, db = -g * a / b^2 = -g * y / b."""

    @staticmethod
    def forward(ctx, a, b):
        out = ctx.backend.div(a, b)
        ctx.save_for_backward(b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        b, out = ctx.saved
        grad_a = bk.div(g, b) if ctx.needs_input_grad[0] else None
        grad_b = bk.neg(bk.div(bk.mul(g, out), b)) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Power(Function):
    """y = a ** b;  da = g * b * a^(b-1), db = g * y * ln(a) (taken as 0 where a == 0)."""

    @staticmethod
    def forward(ctx, a, b):
        out = ctx.backend.power(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        a, b, out = ctx.saved
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            one = shared_constant(bk, 1, b.dtype)
            grad_a = bk.mul(g, bk.mul(b, bk.power(a, bk.sub(b, one))))
        if ctx.needs_input_grad[1]:
            zero, one = shared_constant(bk, 0, a.dtype), shared_constant(bk, 1, a.dtype)
            at_zero = bk.equal(a, zero)
            # ln(a) with a replaced by 1 where a == 0, so no log(0) is ever taken.
            log_a = bk.log(bk.where(at_zero, one, a))
            grad_b = bk.where(at_zero, zero, bk.mul(g, bk.mul(out, log_a)))
        return grad_a, grad_b


class Maximum(Function):
    """y = max(a, b);  g goes to the larger input, split half and half on ties."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.maximum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        return _tie_split(ctx.backend, g, ctx.backend.greater(a, b), ctx.backend.equal(a, b))


class Minimum(Function):
    """y = min(a, b);  g goes to the smaller input, split half and half on ties."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.minimum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        return _tie_split(ctx.backend, g, ctx.backend.less(a, b), ctx.backend.equal(a, b))


def _tie_split(bk, g, a_wins, tie):
    """Gradients of max/min: (g where a wins, g where b wins), g/2 to each on a tie."""
    zero = shared_constant(bk, 0, g.dtype)
    half_g = bk.mul(g, shared_constant(bk, 0.5, g.dtype))
    grad_a = bk.where(a_wins, g, bk.where(tie, half_g, zero))
    grad_b = bk.sub(g, grad_a)
    return grad_a, grad_b


class Where(Function):
    """y = a where cond else b;  da = g where cond, db = g elsewhere."""

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return ctx.backend.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        (cond,) = ctx.saved
        zero = shared_constant(bk, 0, g.dtype)
        return (None,
                bk.where(cond, g, zero) if ctx.needs_input_grad[1] else None,
                bk.where(cond, zero, g) if ctx.needs_input_grad[2] else None)


class Neg(Function):
    """y = -x;  dx = -g."""

    @staticmethod
    def forward(ctx, x):
        return ctx.backend.neg(x)

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.neg(g),)


class Exp(Function):
    """y = e^x;  dx = g * y."""

    @staticmethod
    def forward(ctx, x):
        out = ctx.backend.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.mul(g, ctx.saved[0]),)


class Log(Function):
    """y = ln x;  dx = g / x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.log(x)

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.div(g, ctx.saved[0]),)


class Sqrt(Function):
    """y = sqrt(x);  dx = g / (2 y)  (infinite at x = 0, as the true derivative is)."""

    @staticmethod
    def forward(ctx, x):
        out = ctx.backend.sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        out = ctx.saved[0]
        return (bk.div(g, bk.mul(out, shared_constant(bk, 2, out.dtype))),)


class _Activation(Function):
    """y = act(x), elementwise, by the backend primitive of the same name; dx from y.

    The derivative's one home is ``Backend.activation_backward`` (also used by the fused dense
    backward), which takes the output y: that is what forward saves.
    """

    activation = None     # the primitive's name, set by each subclass

    @classmethod
    def forward(cls, ctx, x):
        out = getattr(ctx.backend, cls.activation)(x)
        ctx.save_for_backward(out)
        return out

    @classmethod
    def backward(cls, ctx, g):
        return (ctx.backend.activation_backward(ctx.saved[0], g, cls.activation, 0),)


class Tanh(_Activation):
    """y = tanh x;  dx = g * (1 - y^2)  (Backend.activation_backward)."""

    activation = "tanh"


class Sigmoid(_Activation):
    """y = 1 / (1 + e^-x);  dx = g * y * (1 - y)  (Backend.activation_backward)."""

    activation = "sigmoid"


class Relu(_Activation):
    """y = max(x, 0);  dx = g where y > 0 (that is, x > 0), else 0  (Backend.activation_backward)."""

    activation = "relu"


class Erf(Function):
    """y = erf x;  dx = g * 2/sqrt(pi) * e^(-x^2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.erf(x)

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        x = ctx.saved[0]
        density = bk.exp(bk.neg(bk.mul(x, x)))
        return (bk.mul(g, bk.mul(density, shared_constant(bk, 2.0 / math.sqrt(math.pi), g.dtype))),)


class Clip(Function):
    """y = min(max(x, low), high);  dx = g where low <= x <= high, else 0."""

    @staticmethod
    def forward(ctx, x, low, high):
        bk = ctx.backend
        ctx.save_for_backward(x)
        return bk.minimum(bk.maximum(x, shared_constant(bk, low, x.dtype)), shared_constant(bk, high, x.dtype))

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        x = ctx.saved[0]
        low, high = ctx.params["low"], ctx.params["high"]
        zero = shared_constant(bk, 0, g.dtype)
        inside = bk.where(bk.greater(x, shared_constant(bk, high, x.dtype)), zero, g)
        return (bk.where(bk.less(x, shared_constant(bk, low, x.dtype)), zero, inside),)


class Sum(Function):
    """y = sum of x over axes;  dx = g broadcast back over the summed axes."""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.params["input_shape"] = x.shape
        return ctx.backend.sum(x, axes, keepdims)

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        shape = ctx.params["input_shape"]
        g = bk.reshape(g, kept_shape(shape, ctx.params["axes"], True))
        return (bk.ascontiguous(bk.broadcast_to(g, shape)),)


class Max(Function):
    """y = max of x over axes;  dx = g / k at each of the k elements equal to the maximum, else 0."""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        bk = ctx.backend
        kept = bk.max(x, axes, True)
        ctx.save_for_backward(x, kept)
        return kept if keepdims else bk.reshape(kept, kept_shape(x.shape, axes, False))

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        x, kept = ctx.saved
        is_max = bk.astype(bk.equal(x, kept), g.dtype)
        count = bk.sum(is_max, ctx.params["axes"], True)  # >= 1: the maximum is always attained
        share = bk.div(bk.reshape(g, kept.shape), count)
        return (bk.mul(is_max, share),)


class MatMul(Function):
    """Y = A @ B;  dA = G @ B^T, dB = A^T @ G (batch axes reduced by the engine)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        a, b = ctx.saved
        return (bk.matmul(g, b, transpose_b=True) if ctx.needs_input_grad[0] else None,
                bk.matmul(a, g, transpose_a=True) if ctx.needs_input_grad[1] else None)


class Reshape(Function):
    """y = x in a new shape;  dx = g in x's shape."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.params["input_shape"] = x.shape
        return ctx.backend.reshape(x, shape)

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.reshape(g, ctx.params["input_shape"]),)


class Transpose(Function):
    """y = x with axes permuted by p;  dx = g permuted by the inverse of p."""

    @staticmethod
    def forward(ctx, x, axes):
        return ctx.backend.transpose(x, axes)

    @staticmethod
    def backward(ctx, g):
        inverse = tuple(int(i) for i in np.argsort(ctx.params["axes"]))
        return (ctx.backend.transpose(g, inverse),)


class GetItem(Function):
    """y = x[index];  dx = zeros of x's shape with g added at index (repeats accumulate)."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.params["input_shape"] = x.shape
        return ctx.backend.getitem(x, index)

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        grad = bk.full(ctx.params["input_shape"], 0, g.dtype)
        bk.index_add(grad, ctx.params["index"], g)
        return (grad,)


class Concatenate(Function):
    """y = the inputs joined along ``axis``: written into zeros piece by piece;  dx_i = g's piece of x_i."""

    @staticmethod
    def forward(ctx, *xs, axis):
        shape = list(xs[0].shape)
        shape[axis] = sum(x.shape[axis] for x in xs)
        out = ctx.backend.full(tuple(shape), 0, xs[0].dtype)
        pieces, start = [], 0
        for x in xs:
            piece = tuple([slice(None)] * axis + [slice(start, start + x.shape[axis])])
            ctx.backend.index_add(out, piece, x)
            pieces.append(piece)
            start += x.shape[axis]
        ctx.params["pieces"] = pieces
        return out

    @staticmethod
    def backward(ctx, g):
        return tuple(ctx.backend.getitem(g, piece) for piece in ctx.params["pieces"])


class Softmax(Function):
    """y = softmax(x) along an axis;  dx = y * (g - sum(g * y)), the sum along that axis (activation_backward)."""

    @staticmethod
    def forward(ctx, x, axis):
        out = ctx.backend.softmax(x, axis)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.activation_backward(ctx.saved[0], g, "softmax", ctx.params["axis"]),)


class LogSoftmax(Function):
    """y = x - logsumexp(x) along an axis;  dx = g - softmax(x) * sum(g), softmax(x) = e^y."""

    @staticmethod
    def forward(ctx, x, axis):
        out = ctx.backend.log_softmax(x, axis)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        out = ctx.saved[0]
        total = bk.sum(g, (ctx.params["axis"],), True)
        return (bk.sub(g, bk.mul(bk.exp(out), total)),)


class Linear(Function):
    """A = act(X @ W + b) by the fused backend primitives (see docs/autograd.md for the math)."""

    @staticmethod
    def forward(ctx, x, w, b, activation):
        out = ctx.backend.dense_forward(x, w, b, activation)
        ctx.save_for_backward(x, w, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, w, out = ctx.saved
        need_x, _, need_b = ctx.needs_input_grad
        grad_x, grad_w, grad_b = ctx.backend.dense_backward(
            x, w, out, g, ctx.params["activation"], need_x)
        return grad_x, grad_w, (grad_b if need_b else None)


class SoftmaxCrossEntropy(Function):
    """L = reduce_i(-sum_j t_ij log softmax(z_i)_j);  dz_ij = dL/dl_i * (p_ij sum_k t_ik - t_ij)."""

    @staticmethod
    def forward(ctx, logits, targets, reduction):
        bk = ctx.backend
        losses, grad = bk.softmax_cross_entropy(logits, targets, ctx.needs_input_grad[0])
        ctx.save_for_backward(grad)
        if reduction == "none":
            return losses
        total = bk.sum(losses, (0,), False)
        if reduction == "sum":
            return total
        return bk.mul(total, shared_constant(bk, 1.0 / logits.shape[0], logits.dtype))

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        (grad,) = ctx.saved
        n = grad.shape[0]
        reduction = ctx.params["reduction"]
        if reduction == "none":
            per_row = bk.reshape(g, (n, 1))
        elif reduction == "sum":
            per_row = bk.reshape(g, (1, 1))
        else:
            per_row = bk.reshape(bk.mul(g, shared_constant(bk, 1.0 / n, g.dtype)), (1, 1))
        return bk.mul(grad, per_row), None


class GatherWindows(Function):
    """im2col: y[:, i] = x[:, positions[i]] (``fill`` in the padding);  dx = col2im(g): each g[:, i]
    added back at positions[i] (``Backend.window_scatter``; docs/convolution.md)."""

    @staticmethod
    def forward(ctx, x, positions, fill):
        ctx.save_for_backward(positions, x.shape[1])
        return ctx.backend.window_gather(x, positions, fill)

    @staticmethod
    def backward(ctx, g):
        positions, size = ctx.saved
        return ctx.backend.window_scatter(g, positions, size), None


class ScatterWindows(Function):
    """col2im: y = (n, size, c) zeros plus each x[:, i] added at positions[i] (the padding's share dropped);
    dx = im2col(g): dx[:, i] = g[:, positions[i]] (0 in the padding). The transposed convolution's op."""

    @staticmethod
    def forward(ctx, x, positions, size):
        ctx.save_for_backward(positions)
        return ctx.backend.window_scatter(x, positions, size)

    @staticmethod
    def backward(ctx, g):
        (positions,) = ctx.saved
        return ctx.backend.window_gather(g, positions, 0.0), None


class MaxPool(Function):
    """y_i = max over window i of x;  dx: g_i added at the first position holding the maximum."""

    @staticmethod
    def forward(ctx, x, positions, window):
        out, chosen = ctx.backend.max_pool(x, positions, window)
        ctx.save_for_backward(chosen, positions, x.shape[1])
        return out

    @staticmethod
    def backward(ctx, g):
        chosen, positions, size = ctx.saved
        return ctx.backend.max_pool_backward(g, chosen, positions, ctx.params["window"], size), None


class AveragePool(Function):
    """y_i = sum of window i's real elements / their count c_i;  dx: g_i / c_i added at each of them."""

    @staticmethod
    def forward(ctx, x, positions, window):
        ctx.save_for_backward(positions, x.shape[1])
        return ctx.backend.average_pool(x, positions, window)

    @staticmethod
    def backward(ctx, g):
        positions, size = ctx.saved
        return ctx.backend.average_pool_backward(g, positions, ctx.params["window"], size), None


class Moments(Function):
    """(mean, biased variance) of a 2-D x over an axis as one (2, k) array. No gradient flows through it:
    ``Normalize`` differentiates through the statistics itself (its ``through_statistics``)."""

    @staticmethod
    def forward(ctx, x, axis):
        return ctx.backend.moments(x, axis)

    @staticmethod
    def backward(ctx, g):  # pragma: no cover - functional.moments detaches its input
        return (None,)


class Normalize(Function):
    """y = gamma * xhat + beta, xhat = (x - mean) * r, r = 1 / sqrt(variance + eps), on a 2-D x;
    dbeta = sum g, dgamma = sum g * xhat, and with h = g * gamma, means over the statistics' axis,
    dx = r * (h - mean(h) - xhat * mean(h * xhat)) when mean and variance are x's own (the terms
    through them), else dx = r * h (Backend.normalize_backward; docs/convolution.md)."""

    @staticmethod
    def forward(ctx, x, mean, variance, gamma, beta, epsilon, axis, through_statistics):
        ctx.save_for_backward(x, mean, variance, gamma)
        return ctx.backend.normalize(x, mean, variance, gamma, beta, epsilon, axis)

    @staticmethod
    def backward(ctx, g):
        x, mean, variance, gamma = ctx.saved
        params = ctx.params
        need_x, _, _, need_gamma, need_beta = ctx.needs_input_grad
        grad_x, grad_gamma, grad_beta = ctx.backend.normalize_backward(
            x, mean, variance, gamma, g, params["epsilon"], params["axis"], params["through_statistics"])
        return (grad_x if need_x else None, None, None, grad_gamma if need_gamma else None,
                grad_beta if need_beta else None)
