"""The numpy reference backend: every primitive in the plainest numpy.

This backend is the executable specification of ``Backend``: other backends are
tested against it, so clarity wins over speed here. Each method's contract is
the docstring of the same method in ``base.py``.
"""
import math

import numpy as np

from .base import Backend


def _activation_forward(z, activation):
    """Apply a dense activation to the pre-activation ``z`` (a new or reused array)."""
    if activation == "none":
        return z
    if activation == "relu":
        return np.maximum(z, 0)
    if activation == "sigmoid":
        return _sigmoid(z)
    if activation == "tanh":
        return np.tanh(z)
    if activation == "softmax":
        return _softmax(z, axis=-1)
    raise ValueError(f"unknown dense activation {activation!r}")


def _activation_backward(out, grad_out, activation):
    """Return dL/dZ from the activation's output a = act(Z) and dL/da.

    relu: g * [a > 0];  sigmoid: g * a * (1 - a);  tanh: g * (1 - a^2);
    softmax (per row): a * (g - sum_j g_j a_j).
    """
    if activation == "none":
        return grad_out
    if activation == "relu":
        return np.where(out > 0, grad_out, 0).astype(out.dtype)
    if activation == "sigmoid":
        return grad_out * out * (1 - out)
    if activation == "tanh":
        return grad_out * (1 - out * out)
    if activation == "softmax":
        return out * (grad_out - np.sum(grad_out * out, axis=-1, keepdims=True))
    raise ValueError(f"unknown dense activation {activation!r}")


def _sigmoid(x):
    """Stable logistic: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) for x < 0 (e^-|x| never overflows)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def _softmax(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _decay(param, lr, weight_decay):
    """Decoupled weight decay, applied before a step: param -= lr * wd * param."""
    if weight_decay:
        param -= param.dtype.type(lr * weight_decay) * param


_ERF = np.vectorize(math.erf, otypes=[np.float64])


class NumpyBackend(Backend):
    """Reference implementation of every primitive with plain numpy."""

    name = "numpy"

    # transfers, creation, copies, casts
    def from_numpy(self, array):
        return np.array(array, copy=True, order="C")

    def to_numpy(self, x):
        return np.array(x, copy=True)

    def full(self, shape, value, dtype):
        return np.full(shape, value, dtype=dtype)

    def copy(self, x):
        return np.array(x, copy=True, order="C")

    def astype(self, x, dtype):
        return x.astype(dtype)

    def ascontiguous(self, x):
        # not np.ascontiguousarray, which turns a 0-d array into a 1-d one
        return x if x.flags.c_contiguous else np.array(x, order="C")

    # views and indexing
    def reshape(self, x, shape):
        return np.reshape(x, shape)

    def transpose(self, x, axes):
        return np.transpose(x, axes)

    def broadcast_to(self, x, shape):
        return np.broadcast_to(x, shape)

    def getitem(self, x, index):
        return x[index]

    def index_add(self, target, index, values):
        np.add.at(target, index, values)

    # elementwise unary
    def neg(self, x):
        return np.negative(x)

    def exp(self, x):
        return np.exp(x)

    def log(self, x):
        return np.log(x)

    def sqrt(self, x):
        return np.sqrt(x)

    def tanh(self, x):
        return np.tanh(x)

    def sigmoid(self, x):
        return _sigmoid(x)

    def relu(self, x):
        return np.maximum(x, 0).astype(x.dtype)

    def erf(self, x):
        # numpy has no erf; math.erf is exact to double precision, which is what a reference needs.
        return _ERF(x).astype(x.dtype)

    # elementwise binary
    def add(self, a, b):
        return np.add(a, b)

    def sub(self, a, b):
        return np.subtract(a, b)

    def mul(self, a, b):
        return np.multiply(a, b)

    def div(self, a, b):
        return np.divide(a, b)

    def power(self, a, b):
        return np.power(a, b)

    def maximum(self, a, b):
        return np.maximum(a, b)

    def minimum(self, a, b):
        return np.minimum(a, b)

    # comparisons and selection
    def equal(self, a, b):
        return np.equal(a, b)

    def not_equal(self, a, b):
        return np.not_equal(a, b)

    def less(self, a, b):
        return np.less(a, b)

    def less_equal(self, a, b):
        return np.less_equal(a, b)

    def greater(self, a, b):
        return np.greater(a, b)

    def greater_equal(self, a, b):
        return np.greater_equal(a, b)

    def where(self, cond, a, b):
        return np.where(cond, a, b)

    # reductions
    def sum(self, x, axes, keepdims):
        return np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype)

    def max(self, x, axes, keepdims):
        return np.max(x, axis=axes, keepdims=keepdims)

    def argmax(self, x, axis):
        return np.argmax(x, axis=axis).astype(np.int64)

    # products
    def matmul(self, a, b, transpose_a=False, transpose_b=False):
        if transpose_a:
            a = np.swapaxes(a, -1, -2)
        if transpose_b:
            b = np.swapaxes(b, -1, -2)
        return np.matmul(a, b)

    # fused neural-network primitives
    def dense_forward(self, x, w, b, activation):
        z = x @ w
        if b is not None:
            z = z + b
        return _activation_forward(z, activation)

    def dense_backward(self, x, w, out, grad_out, activation, need_grad_x):
        dz = _activation_backward(out, grad_out, activation)
        grad_w = x.T @ dz
        grad_b = np.sum(dz, axis=0)
        grad_x = dz @ w.T if need_grad_x else None
        return grad_x, grad_w, grad_b

    def softmax(self, x, axis):
        return _softmax(x, axis)

    def log_softmax(self, x, axis):
        return _log_softmax(x, axis)

    def softmax_cross_entropy(self, logits, targets, need_grad):
        # -log p_ij = lse_i - z_ij, with lse_i = log sum_j exp(z_ij) taken stably.
        neg_log_p = -_log_softmax(logits, axis=1)
        rows = np.arange(logits.shape[0])
        if targets.ndim == 1:
            losses = neg_log_p[rows, targets]
        else:
            losses = np.sum(targets * neg_log_p, axis=1)
        if not need_grad:
            return losses, None
        p = np.exp(-neg_log_p)
        if targets.ndim == 1:
            grad = p.copy()
            grad[rows, targets] -= 1
        else:
            # d/dz_ij of -sum_k t_ik log p_ik = p_ij * sum_k t_ik - t_ij
            grad = p * np.sum(targets, axis=1, keepdims=True) - targets
        return losses, grad

    def sgd_update(self, param, grad, velocity, lr, momentum, nesterov, weight_decay):
        _decay(param, lr, weight_decay)
        if momentum == 0:
            param -= param.dtype.type(lr) * grad
            return
        velocity *= param.dtype.type(momentum)
        velocity -= param.dtype.type(lr) * grad
        if nesterov:
            param += param.dtype.type(momentum) * velocity - param.dtype.type(lr) * grad
        else:
            param += velocity

    def adam_update(self, param, grad, m, v, v_max, step, lr, beta_1, beta_2, epsilon,
                    amsgrad, weight_decay):
        _decay(param, lr, weight_decay)
        t = param.dtype.type
        alpha = lr * np.sqrt(1 - beta_2 ** step) / (1 - beta_1 ** step)
        m += t(1 - beta_1) * (grad - m)
        v += t(1 - beta_2) * (grad * grad - v)
        if amsgrad:
            np.maximum(v_max, v, out=v_max)
            v = v_max
        param -= t(alpha) * m / (np.sqrt(v) + t(epsilon))

    def rmsprop_update(self, param, grad, mean_square, mean_grad, velocity, lr, rho,
                       momentum, epsilon, centered, weight_decay):
        _decay(param, lr, weight_decay)
        t = param.dtype.type
        mean_square *= t(rho)
        mean_square += t(1 - rho) * grad * grad
        denominator = mean_square + t(epsilon)
        if centered:
            mean_grad *= t(rho)
            mean_grad += t(1 - rho) * grad
            denominator = denominator - mean_grad * mean_grad
        increment = t(lr) * grad / np.sqrt(denominator)
        if momentum > 0:
            velocity *= t(momentum)
            velocity += increment
            param -= velocity
        else:
            param -= increment

    def adagrad_update(self, param, grad, accumulator, lr, epsilon, weight_decay):
        _decay(param, lr, weight_decay)
        t = param.dtype.type
        accumulator += grad * grad
        param -= t(lr) * grad / np.sqrt(accumulator + t(epsilon))
