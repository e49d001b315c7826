"""The scalars of one optimizer step, computed once on the host in float64, named the same everywhere.

Each ``*_scalars`` function turns an update's hyper-parameters into the scalars its kernel
reads, in the kernel's argument order. The reference defaults in ``base.py``, the numba
kernels (``kernels/cpu/optim.py``) and the CUDA kernels (``kernels/cuda/optim.cu``) all take
these, under these names, so a formula such as Adam's step size is written once, here.

``decay`` is decoupled weight decay as a factor, ``1 - lr * weight_decay`` (1 without decay):
every update starts with ``param *= decay``, which is Keras's ``param -= lr * wd * param``.
"""
import math
from typing import NamedTuple


class SGDScalars(NamedTuple):
    """SGD: ``v = momentum v - lr g``; ``param += v`` (Nesterov: ``momentum v - lr g``), or ``param -= lr g``."""

    lr: float
    momentum: float
    decay: float


class AdamScalars(NamedTuple):
    """Adam: ``m += (1 - b1)(g - m)``, ``v += (1 - b2)(g^2 - v)``, ``param -= alpha m / (sqrt(v) + epsilon)``."""

    alpha: float
    one_minus_beta_1: float
    one_minus_beta_2: float
    epsilon: float
    decay: float


class RMSpropScalars(NamedTuple):
    """RMSprop: ``s = rho s + (1 - rho) g^2``, ``param -= lr g / sqrt(s + epsilon)`` (see base.py for the rest)."""

    lr: float
    rho: float
    one_minus_rho: float
    momentum: float
    epsilon: float
    decay: float


class AdagradScalars(NamedTuple):
    """Adagrad: ``a += g^2``, ``param -= lr g / sqrt(a + epsilon)``."""

    lr: float
    epsilon: float
    decay: float


class AdamaxScalars(NamedTuple):
    """Adamax: ``m += (1 - b1)(g - m)``, ``u = max(b2 u, |g|)``, ``param -= step_size m / (u + epsilon)``."""

    step_size: float
    one_minus_beta_1: float
    beta_2: float
    epsilon: float
    decay: float


class NadamScalars(NamedTuple):
    """Nadam: ``m += (1 - b1)(g - m)``, ``v += (1 - b2)(g^2 - v)``,
    ``param -= (momentum_step m + gradient_step g) / (sqrt(v velocity_scale) + epsilon)``."""

    momentum_step: float
    gradient_step: float
    one_minus_beta_1: float
    one_minus_beta_2: float
    velocity_scale: float
    epsilon: float
    decay: float


class LionScalars(NamedTuple):
    """Lion: ``param -= lr sign(b1 m + (1 - b1) g)``, then ``m = b2 m + (1 - b2) g``."""

    lr: float
    beta_1: float
    one_minus_beta_1: float
    beta_2: float
    one_minus_beta_2: float
    decay: float


class AdadeltaScalars(NamedTuple):
    """Adadelta: ``a = rho a + (1 - rho) g^2``, ``d = -sqrt(s + eps) g / sqrt(a + eps)``,
    ``s = rho s + (1 - rho) d^2``, ``param += lr d``."""

    lr: float
    rho: float
    one_minus_rho: float
    epsilon: float
    decay: float


class FtrlScalars(NamedTuple):
    """FTRL-proximal: with q = param decay, ``g' = g + two_l2_shrinkage q``, ``n' = n + g^2``,
    ``z += g' - (n'^power - n^power) / lr q``, ``param = (clip(z, -l1, l1) - z) / (n'^power / lr + two_l2)``."""

    lr: float
    power: float
    two_l2_shrinkage: float
    two_l2: float
    l1: float
    decay: float


def _decay(lr, weight_decay):
    return 1.0 - lr * weight_decay


def sgd_scalars(lr, momentum, weight_decay):
    """The scalars of one SGD step."""
    return SGDScalars(lr, momentum, _decay(lr, weight_decay))


def adam_scalars(step, lr, beta_1, beta_2, epsilon, weight_decay):
    """The scalars of Adam step number ``step`` (from 1).

    Keras folds both bias corrections into the step size instead of correcting m and v:
    alpha = lr * sqrt(1 - beta_2^step) / (1 - beta_1^step), and epsilon is added to the
    uncorrected sqrt(v).
    """
    alpha = lr * math.sqrt(1 - beta_2 ** step) / (1 - beta_1 ** step)
    return AdamScalars(alpha, 1 - beta_1, 1 - beta_2, epsilon, _decay(lr, weight_decay))


def rmsprop_scalars(lr, rho, momentum, epsilon, weight_decay):
    """The scalars of one RMSprop step."""
    return RMSpropScalars(lr, rho, 1 - rho, momentum, epsilon, _decay(lr, weight_decay))


def adagrad_scalars(lr, epsilon, weight_decay):
    """The scalars of one Adagrad step."""
    return AdagradScalars(lr, epsilon, _decay(lr, weight_decay))


def adamax_scalars(step, lr, beta_1, beta_2, epsilon, weight_decay):
    """The scalars of Adamax step number ``step`` (from 1): Keras's lr / (1 - beta_1^step) as one step size."""
    return AdamaxScalars(lr / (1 - beta_1 ** step), 1 - beta_1, beta_2, epsilon, _decay(lr, weight_decay))


def nadam_momentum_factor(step, beta_1):
    """Nadam's momentum schedule (Dozat, as Keras): u_t = beta_1 (1 - 0.5 * 0.96^t) at step t (from 1)."""
    return beta_1 * (1 - 0.5 * 0.96 ** step)


def nadam_scalars(step, u_product, lr, beta_1, beta_2, epsilon, weight_decay):
    """The scalars of Nadam step number ``step`` (from 1); ``u_product`` is u_1 u_2 ... u_step.

    Keras's step is lr * m_hat / (sqrt(v_hat) + epsilon) with
    m_hat = u_{t+1} m / (1 - u_product u_{t+1}) + (1 - u_t) g / (1 - u_product) and
    v_hat = v / (1 - beta_2^t): the two m_hat coefficients times lr are the momentum and gradient steps.
    Every denominator is at least 1 - beta_1 > 0 (beta_1 < 1) or 1 - beta_2 > 0.
    """
    u_now, u_next = nadam_momentum_factor(step, beta_1), nadam_momentum_factor(step + 1, beta_1)
    return NadamScalars(lr * u_next / (1 - u_product * u_next), lr * (1 - u_now) / (1 - u_product), 1 - beta_1,
                        1 - beta_2, 1 / (1 - beta_2 ** step), epsilon, _decay(lr, weight_decay))


def lion_scalars(lr, beta_1, beta_2, weight_decay):
    """The scalars of one Lion step."""
    return LionScalars(lr, beta_1, 1 - beta_1, beta_2, 1 - beta_2, _decay(lr, weight_decay))


def adadelta_scalars(lr, rho, epsilon, weight_decay):
    """The scalars of one Adadelta step."""
    return AdadeltaScalars(lr, rho, 1 - rho, epsilon, _decay(lr, weight_decay))


def ftrl_scalars(lr, learning_rate_power, l1, l2, l2_shrinkage, beta, weight_decay):
    """The scalars of one FTRL step: Keras's l2 + beta / (2 lr), doubled, and the exponent -learning_rate_power.
    The update divides by lr, so lr must be > 0."""
    if not lr > 0:
        raise ValueError(f"Ftrl: the learning rate must be > 0 (the update divides by it), got {lr}")
    return FtrlScalars(lr, -learning_rate_power, 2 * l2_shrinkage, 2 * (l2 + beta / (2 * lr)), l1,
                       _decay(lr, weight_decay))


def typed(scalars, dtype):
    """The scalars as numpy scalars of ``dtype``, so float32 kernels compute in float32."""
    return type(scalars)._make(map(dtype.type, scalars))


_MEMO = {}
_MEMO_LIMIT = 16


def typed_scalars(make, dtype, *arguments):
    """``typed(make(*arguments), dtype)``, memoized: what the backends call once per parameter.

    Every parameter of a model takes the same step's scalars, and making numpy scalars costs more
    than the small kernels that read them. The memo is emptied when it fills (Adam's step count,
    and with it its scalars, changes every step).
    """
    key = (make, dtype, arguments)
    result = _MEMO.get(key)
    if result is None:
        if len(_MEMO) >= _MEMO_LIMIT:
            _MEMO.clear()
        result = _MEMO[key] = typed(make(*arguments), dtype)
    return result
