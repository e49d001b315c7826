"""In-place optimizer updates over flat parameter arrays, with Keras's formulas.

SGD, Adam (AdamW, AMSGrad), RMSprop, Adagrad, Adamax, Nadam, Lion, Adadelta and FTRL.

Each kernel reads and writes every array once, in one loop: the whole update is
one pass over memory. The scalars are those of ``nnengine/backends/optimizer_scalars.py``,
named and ordered as there (and as in ``kernels/cuda/optim.cu``), computed once per step
by the backend in the parameter's dtype (so float32 stays float32). ``decay`` is
decoupled weight decay as a factor, 1 - lr * weight_decay, applied first.
Each kernel has a serial and a parallel variant (the serial kernel over one span per thread).
"""
import math

from .jit import njit, prange
from .spans import span, span_count


@njit(inline="always")
def _sgd(i, param, grad, velocity, lr, momentum, decay, use_momentum, nesterov):
    w = param[i] * decay
    if use_momentum:
        v = momentum * velocity[i] - lr * grad[i]
        velocity[i] = v
        w = w + (momentum * v - lr * grad[i] if nesterov else v)
    else:
        w = w - lr * grad[i]
    param[i] = w


@njit(cache=True, error_model="numpy")
def sgd(param, grad, velocity, lr, momentum, decay, use_momentum, nesterov):
    """v = momentum v - lr g;  w += v (Nesterov: w += momentum v - lr g); plain: w -= lr g."""
    for i in range(param.size):
        _sgd(i, param, grad, velocity, lr, momentum, decay, use_momentum, nesterov)


@njit(cache=True, error_model="numpy", parallel=True)
def sgd_parallel(param, grad, velocity, lr, momentum, decay, use_momentum, nesterov):
    """``sgd`` over one span of the elements per thread (``spans.py`` says why)."""
    spans = span_count(param.size)
    for k in prange(spans):
        a, b = span(k, spans, param.size)
        sgd(param[a:b], grad[a:b], velocity[a:b], lr, momentum, decay, use_momentum, nesterov)


@njit(inline="always")
def _adam(i, param, grad, m, v, v_max, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, decay, amsgrad):
    # alpha = lr sqrt(1 - b2^t) / (1 - b1^t): both bias corrections folded into the step size
    g = grad[i]
    mi = m[i] + one_minus_beta_1 * (g - m[i])
    vi = v[i] + one_minus_beta_2 * (g * g - v[i])
    m[i] = mi
    v[i] = vi
    if amsgrad:
        vi = vi if vi > v_max[i] else v_max[i]
        v_max[i] = vi
    param[i] = param[i] * decay - alpha * mi / (math.sqrt(vi) + epsilon)


@njit(cache=True, error_model="numpy")
def adam(param, grad, m, v, v_max, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, decay, amsgrad):
    """Keras's Adam: epsilon added to sqrt(v), bias corrections folded into the step size alpha."""
    # one loop per case, each with a constant flag, so the loop body has no branch and vectorises
    if amsgrad:
        for i in range(param.size):
            _adam(i, param, grad, m, v, v_max, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, decay, True)
    else:
        for i in range(param.size):
            _adam(i, param, grad, m, v, v_max, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, decay, False)


@njit(cache=True, error_model="numpy", parallel=True)
def adam_parallel(param, grad, m, v, v_max, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, decay, amsgrad):
    """``adam`` over one span of the elements per thread (``spans.py`` says why)."""
    spans = span_count(param.size)
    for k in prange(spans):
        a, b = span(k, spans, param.size)
        adam(param[a:b], grad[a:b], m[a:b], v[a:b], v_max[a:b], alpha, one_minus_beta_1, one_minus_beta_2,
             epsilon, decay, amsgrad)


@njit(inline="always")
def _rmsprop(i, param, grad, mean_square, mean_grad, velocity, lr, rho, one_minus_rho, momentum, epsilon, decay,
             centered, use_momentum):
    g = grad[i]
    s = rho * mean_square[i] + one_minus_rho * g * g
    mean_square[i] = s
    denominator = s + epsilon
    if centered:
        mg = rho * mean_grad[i] + one_minus_rho * g
        mean_grad[i] = mg
        denominator = denominator - mg * mg
    step = lr * g / math.sqrt(denominator)
    if use_momentum:
        step = momentum * velocity[i] + step
        velocity[i] = step
    param[i] = param[i] * decay - step


@njit(cache=True, error_model="numpy")
def rmsprop(param, grad, mean_square, mean_grad, velocity, lr, rho, one_minus_rho, momentum, epsilon, decay,
            centered, use_momentum):
    """Keras's RMSprop: w -= lr g / sqrt(s + eps) (centered: s - mean_g^2), optional momentum."""
    for i in range(param.size):
        _rmsprop(i, param, grad, mean_square, mean_grad, velocity, lr, rho, one_minus_rho, momentum, epsilon, decay,
                 centered, use_momentum)


@njit(cache=True, error_model="numpy", parallel=True)
def rmsprop_parallel(param, grad, mean_square, mean_grad, velocity, lr, rho, one_minus_rho, momentum, epsilon, decay,
                     centered, use_momentum):
    """``rmsprop`` over one span of the elements per thread (``spans.py`` says why)."""
    spans = span_count(param.size)
    for k in prange(spans):
        a, b = span(k, spans, param.size)
        rmsprop(param[a:b], grad[a:b], mean_square[a:b], mean_grad[a:b], velocity[a:b], lr, rho,
                one_minus_rho, momentum, epsilon, decay, centered, use_momentum)


@njit(inline="always")
def _adamax(i, param, grad, m, u, step_size, one_minus_beta_1, beta_2, epsilon, decay):
    g = grad[i]
    mi = m[i] + (g - m[i]) * one_minus_beta_1
    decayed, size = u[i] * beta_2, abs(g)
    ui = decayed if decayed > size else size           # a NaN gradient stays NaN
    m[i], u[i] = mi, ui
    param[i] = param[i] * decay - step_size * mi / (ui + epsilon)


@njit(cache=True, error_model="numpy")
def adamax(param, grad, m, u, step_size, one_minus_beta_1, beta_2, epsilon, decay):
    """Keras's Adamax: m += (1 - b1)(g - m);  u = max(b2 u, |g|);  w -= lr / (1 - b1^t) m / (u + eps)."""
    for i in range(param.size):
        _adamax(i, param, grad, m, u, step_size, one_minus_beta_1, beta_2, epsilon, decay)


@njit(cache=True, error_model="numpy", parallel=True)
def adamax_parallel(param, grad, m, u, step_size, one_minus_beta_1, beta_2, epsilon, decay):
    """``adamax`` over one span of the elements per thread (``spans.py`` says why)."""
    spans = span_count(param.size)
    for k in prange(spans):
        a, b = span(k, spans, param.size)
        adamax(param[a:b], grad[a:b], m[a:b], u[a:b], step_size, one_minus_beta_1, beta_2, epsilon, decay)


@njit(inline="always")
def _adagrad(i, param, grad, accumulator, lr, epsilon, decay):
    g = grad[i]
    a = accumulator[i] + g * g
    accumulator[i] = a
    param[i] = param[i] * decay - lr * g / math.sqrt(a + epsilon)


@njit(cache=True, error_model="numpy")
def adagrad(param, grad, accumulator, lr, epsilon, decay):
    """Keras's Adagrad: a += g^2;  w -= lr g / sqrt(a + eps)."""
    for i in range(param.size):
        _adagrad(i, param, grad, accumulator, lr, epsilon, decay)


@njit(cache=True, error_model="numpy", parallel=True)
def adagrad_parallel(param, grad, accumulator, lr, epsilon, decay):
    """``adagrad`` over one span of the elements per thread (``spans.py`` says why)."""
    spans = span_count(param.size)
    for k in prange(spans):
        a, b = span(k, spans, param.size)
        adagrad(param[a:b], grad[a:b], accumulator[a:b], lr, epsilon, decay)


@njit(inline="always")
def _nadam(i, param, grad, m, v, momentum_step, gradient_step, one_minus_beta_1, one_minus_beta_2, velocity_scale,
           epsilon, decay):
    # lr m_hat = momentum_step m + gradient_step g (Keras's m_hat, its two coefficients folded with lr on the host)
    g = grad[i]
    mi = m[i] + (g - m[i]) * one_minus_beta_1
    vi = v[i] + (g * g - v[i]) * one_minus_beta_2
    m[i], v[i] = mi, vi
    param[i] = param[i] * decay - (momentum_step * mi + gradient_step * g) / (math.sqrt(vi * velocity_scale) + epsilon)


@njit(cache=True, error_model="numpy")
def nadam(param, grad, m, v, momentum_step, gradient_step, one_minus_beta_1, one_minus_beta_2, velocity_scale,
          epsilon, decay):
    """Keras's Nadam: Adam's moments, with Nesterov's look-ahead in the first (see optimizer_scalars.nadam_scalars)."""
    for i in range(param.size):
        _nadam(i, param, grad, m, v, momentum_step, gradient_step, one_minus_beta_1, one_minus_beta_2, velocity_scale,
               epsilon, decay)


@njit(cache=True, error_model="numpy", parallel=True)
def nadam_parallel(param, grad, m, v, momentum_step, gradient_step, one_minus_beta_1, one_minus_beta_2,
                   velocity_scale, epsilon, decay):
    """``nadam`` over one span of the elements per thread (``spans.py`` says why)."""
    spans = span_count(param.size)
    for k in prange(spans):
        a, b = span(k, spans, param.size)
        nadam(param[a:b], grad[a:b], m[a:b], v[a:b], momentum_step, gradient_step, one_minus_beta_1,
              one_minus_beta_2, velocity_scale, epsilon, decay)


@njit(inline="always")
def _signed(x, size):
    """size * sign(x) in their own dtype: size, -size or 0 (x * 0: a NaN x stays NaN)."""
    return size if x > 0 else (-size if x < 0 else x * 0)


@njit(inline="always")
def _lion(i, param, grad, m, lr, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, decay):
    g, mi = grad[i], m[i]
    param[i] = param[i] * decay - _signed(mi * beta_1 + g * one_minus_beta_1, lr)
    m[i] = mi * beta_2 + g * one_minus_beta_2


@njit(cache=True, error_model="numpy")
def lion(param, grad, m, lr, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, decay):
    """Keras's Lion: w -= lr sign(b1 m + (1 - b1) g);  m = b2 m + (1 - b2) g."""
    for i in range(param.size):
        _lion(i, param, grad, m, lr, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, decay)


@njit(cache=True, error_model="numpy", parallel=True)
def lion_parallel(param, grad, m, lr, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, decay):
    """``lion`` over one span of the elements per thread (``spans.py`` says why)."""
    spans = span_count(param.size)
    for k in prange(spans):
        a, b = span(k, spans, param.size)
        lion(param[a:b], grad[a:b], m[a:b], lr, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, decay)


@njit(inline="always")
def _adadelta(i, param, grad, accumulated_grad, accumulated_delta, lr, rho, one_minus_rho, epsilon, decay):
    g, s = grad[i], accumulated_delta[i]
    a = rho * accumulated_grad[i] + one_minus_rho * (g * g)
    delta = -(math.sqrt(s + epsilon) * g / math.sqrt(a + epsilon))
    accumulated_grad[i] = a
    accumulated_delta[i] = rho * s + one_minus_rho * (delta * delta)
    param[i] = param[i] * decay + lr * delta


@njit(cache=True, error_model="numpy")
def adadelta(param, grad, accumulated_grad, accumulated_delta, lr, rho, one_minus_rho, epsilon, decay):
    """Keras's Adadelta: a = rho a + (1 - rho) g^2;  d = -sqrt(s + eps) g / sqrt(a + eps);
    s = rho s + (1 - rho) d^2;  w += lr d."""
    for i in range(param.size):
        _adadelta(i, param, grad, accumulated_grad, accumulated_delta, lr, rho, one_minus_rho, epsilon, decay)


@njit(cache=True, error_model="numpy", parallel=True)
def adadelta_parallel(param, grad, accumulated_grad, accumulated_delta, lr, rho, one_minus_rho, epsilon, decay):
    """``adadelta`` over one span of the elements per thread (``spans.py`` says why)."""
    spans = span_count(param.size)
    for k in prange(spans):
        a, b = span(k, spans, param.size)
        adadelta(param[a:b], grad[a:b], accumulated_grad[a:b], accumulated_delta[a:b], lr, rho, one_minus_rho,
                 epsilon, decay)


@njit(inline="always")
def _ftrl(i, param, grad, accumulator, linear, lr, power, two_l2_shrinkage, two_l2, l1, decay):
    g, n, q = grad[i], accumulator[i], param[i] * decay
    grown = n + g * g
    grown_power = grown ** power
    z = linear[i] + ((g + two_l2_shrinkage * q) - (grown_power - n ** power) / lr * q)
    clipped = min(max(z, -l1), l1)
    linear[i] = z
    param[i] = (clipped - z) / (grown_power / lr + two_l2)
    accumulator[i] = grown


@njit(cache=True, error_model="numpy")
def ftrl(param, grad, accumulator, linear, lr, power, two_l2_shrinkage, two_l2, l1, decay):
    """Keras's FTRL-proximal: q = w decay;  n' = n + g^2;  z += g + 2 l2s q - (n'^c - n^c) / lr q;
    w = (clip(z, -l1, l1) - z) / (n'^c / lr + 2 l2);  n = n'."""
    for i in range(param.size):
        _ftrl(i, param, grad, accumulator, linear, lr, power, two_l2_shrinkage, two_l2, l1, decay)


@njit(cache=True, error_model="numpy", parallel=True)
def ftrl_parallel(param, grad, accumulator, linear, lr, power, two_l2_shrinkage, two_l2, l1, decay):
    """``ftrl`` over one span of the elements per thread (``spans.py`` says why)."""
    spans = span_count(param.size)
    for k in prange(spans):
        a, b = span(k, spans, param.size)
        ftrl(param[a:b], grad[a:b], accumulator[a:b], linear[a:b], lr, power, two_l2_shrinkage, two_l2, l1, decay)
