"""Launchers for optim.cu: in-place SGD, Adam/AdamW/AMSGrad, RMSprop and Adagrad updates.

Arrays are C-contiguous and of one dtype; a state array the update does not use (velocity
without momentum, v_max without AMSGrad, ...) is passed as None and replaced by ``param``,
which the kernel then never reads. Hyper-parameters become scalars of the arrays' dtype.
"""
import math

import numpy as np

from . import launch, loader

SOURCE = "optim.cu"
_i = np.int64


def _launch(kernel, param, arrays, scalars, flags):
    t = param.dtype.type
    grid, block = launch.grid_stride(param.size)
    args = [param if a is None else a for a in arrays]
    args += [_i(param.size), *(t(s) for s in scalars), *(_i(bool(f)) for f in flags)]
    loader.function(SOURCE, kernel, param.dtype)(grid, block, tuple([param, *args]))


def sgd(param, grad, velocity, lr, momentum, nesterov, weight_decay):
    """SGD with optional (Nesterov) momentum and decoupled weight decay (Keras's formula)."""
    _launch("sgd_update", param, (grad, velocity), (lr, momentum, 1 - lr * weight_decay),
            (momentum != 0, nesterov))


def adam(param, grad, m, v, v_max, step, lr, beta_1, beta_2, epsilon, amsgrad, weight_decay):
    """Adam / AdamW / AMSGrad (Keras's formula: bias corrections folded into the step size)."""
    # alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t), computed once here in float64
    alpha = lr * math.sqrt(1 - beta_2 ** step) / (1 - beta_1 ** step)
    _launch("adam_update", param, (grad, m, v, v_max),
            (alpha, 1 - beta_1, 1 - beta_2, epsilon, 1 - lr * weight_decay), (amsgrad,))


def rmsprop(param, grad, mean_square, mean_grad, velocity, lr, rho, momentum, epsilon, centered,
            weight_decay):
    """RMSprop, plain or centered, with optional momentum (epsilon inside the square root)."""
    _launch("rmsprop_update", param, (grad, mean_square, mean_grad, velocity),
            (lr, rho, momentum, epsilon, 1 - lr * weight_decay), (centered, momentum > 0))


def adagrad(param, grad, accumulator, lr, epsilon, weight_decay):
    """Adagrad: accumulate squared gradients, divide the step by their root."""
    _launch("adagrad_update", param, (grad, accumulator), (lr, epsilon, 1 - lr * weight_decay), ())
