"""In-place optimizer updates over flat parameter arrays, with Keras's formulas.

Each kernel reads and writes every array once, in one loop: the whole update is
one pass over memory. ``c`` holds the step's scalar coefficients, computed once
by the backend in the parameter's dtype (so float32 stays float32):
weight decay is Keras's decoupled form, w <- w - lr * wd * w, applied first.
Each kernel has a serial and a parallel (prange) variant.
"""
import math

from numba import njit, prange


@njit(inline="always")
def _sgd(i, param, grad, velocity, c, momentum_on, nesterov):
    # c = (lr, momentum, 1 - lr * wd)
    w = param[i] * c[2]
    if momentum_on:
        v = c[1] * velocity[i] - c[0] * grad[i]
        velocity[i] = v
        w = w + (c[1] * v - c[0] * grad[i] if nesterov else v)
    else:
        w = w - c[0] * grad[i]
    param[i] = w


@njit(cache=True, error_model="numpy")
def sgd(param, grad, velocity, c, momentum_on, nesterov):
    """v = momentum v - lr g;  w += v (Nesterov: w += momentum v - lr g); plain: w -= lr g."""
    for i in range(param.size):
        _sgd(i, param, grad, velocity, c, momentum_on, nesterov)


@njit(cache=True, error_model="numpy", parallel=True)
def sgd_parallel(param, grad, velocity, c, momentum_on, nesterov):
    """``sgd`` split across threads."""
    for i in prange(param.size):
        _sgd(i, param, grad, velocity, c, momentum_on, nesterov)


@njit(inline="always")
def _adam(i, param, grad, m, v, v_max, c, amsgrad):
    # c = (alpha, 1 - beta_1, 1 - beta_2, epsilon, 1 - lr * wd); alpha = lr sqrt(1 - b2^t) / (1 - b1^t)
    g = grad[i]
    mi = m[i] + c[1] * (g - m[i])
    vi = v[i] + c[2] * (g * g - v[i])
    m[i] = mi
    v[i] = vi
    if amsgrad:
        vi = vi if vi > v_max[i] else v_max[i]
        v_max[i] = vi
    param[i] = param[i] * c[4] - c[0] * mi / (math.sqrt(vi) + c[3])


@njit(cache=True, error_model="numpy")
def adam(param, grad, m, v, v_max, c, amsgrad):
    """Keras's Adam: epsilon added to sqrt(v), bias corrections folded into the step size alpha."""
    # one loop per case, each with a constant flag, so the loop body has no branch and vectorises
    if amsgrad:
        for i in range(param.size):
            _adam(i, param, grad, m, v, v_max, c, True)
    else:
        for i in range(param.size):
            _adam(i, param, grad, m, v, v_max, c, False)


@njit(cache=True, error_model="numpy", parallel=True)
def adam_parallel(param, grad, m, v, v_max, c, amsgrad):
    """``adam`` split across threads."""
    for i in prange(param.size):
        _adam(i, param, grad, m, v, v_max, c, amsgrad)


@njit(inline="always")
def _rmsprop(i, param, grad, mean_square, mean_grad, velocity, c, centered, momentum_on):
    # c = (lr, rho, 1 - rho, epsilon, momentum, 1 - lr * wd)
    g = grad[i]
    s = c[1] * mean_square[i] + c[2] * g * g
    mean_square[i] = s
    denominator = s + c[3]
    if centered:
        mg = c[1] * mean_grad[i] + c[2] * g
        mean_grad[i] = mg
        denominator = denominator - mg * mg
    step = c[0] * g / math.sqrt(denominator)
    w = param[i] * c[5]
    if momentum_on:
        vel = c[4] * velocity[i] + step
        velocity[i] = vel
        w = w - vel
    else:
        w = w - step
    param[i] = w


@njit(cache=True, error_model="numpy")
def rmsprop(param, grad, mean_square, mean_grad, velocity, c, centered, momentum_on):
    """Keras's RMSprop: w -= lr g / sqrt(s + eps) (centered: s - mean_g^2), optional momentum."""
    for i in range(param.size):
        _rmsprop(i, param, grad, mean_square, mean_grad, velocity, c, centered, momentum_on)


@njit(cache=True, error_model="numpy", parallel=True)
def rmsprop_parallel(param, grad, mean_square, mean_grad, velocity, c, centered, momentum_on):
    """``rmsprop`` split across threads."""
    for i in prange(param.size):
        _rmsprop(i, param, grad, mean_square, mean_grad, velocity, c, centered, momentum_on)


@njit(inline="always")
def _adagrad(i, param, grad, accumulator, c):
    # c = (lr, epsilon, 1 - lr * wd)
    g = grad[i]
    a = accumulator[i] + g * g
    accumulator[i] = a
    param[i] = param[i] * c[2] - c[0] * g / math.sqrt(a + c[1])


@njit(cache=True, error_model="numpy")
def adagrad(param, grad, accumulator, c):
    """Keras's Adagrad: a += g^2;  w -= lr g / sqrt(a + eps)."""
    for i in range(param.size):
        _adagrad(i, param, grad, accumulator, c)


@njit(cache=True, error_model="numpy", parallel=True)
def adagrad_parallel(param, grad, accumulator, c):
    """``adagrad`` split across threads."""
    for i in prange(param.size):
        _adagrad(i, param, grad, accumulator, c)
