"""Launchers for optim.cu: in-place SGD, Adam/AdamW/AMSGrad, RMSprop and Adagrad updates.

Arrays are C-contiguous and of one dtype; a state array the update does not use (velocity
without momentum, v_max without AMSGrad, ...) is passed as None and replaced by ``param``,
which the kernel then never reads. ``scalars`` is the step's tuple from
``nnengine/backends/optimizer_scalars.py``, already in the arrays' dtype: the kernels take
its fields by the same names and in the same order (as the numba kernels do).
"""
import numpy as np

from . import launch, loader

SOURCE = "optim.cu"
_i = np.int64


def _launch(kernel, param, arrays, scalars, flags):
    grid, block = launch.grid_stride(param.size)
    args = [param if a is None else a for a in arrays]
    args += [_i(param.size), *scalars, *(_i(bool(f)) for f in flags)]
    loader.function(SOURCE, kernel, param.dtype)(grid, block, tuple([param, *args]))


def sgd(param, grad, velocity, scalars, use_momentum, nesterov):
    """SGD with optional (Nesterov) momentum and decoupled weight decay (Keras's formula)."""
    _launch("sgd_update", param, (grad, velocity), scalars, (use_momentum, nesterov))


def adam(param, grad, m, v, v_max, scalars, amsgrad):
    """Adam / AdamW / AMSGrad (Keras's formula: bias corrections folded into the step size)."""
    _launch("adam_update", param, (grad, m, v, v_max), scalars, (amsgrad,))


def rmsprop(param, grad, mean_square, mean_grad, velocity, scalars, centered, use_momentum):
    """RMSprop, plain or centered, with optional momentum (epsilon inside the square root)."""
    _launch("rmsprop_update", param, (grad, mean_square, mean_grad, velocity), scalars, (centered, use_momentum))


def adagrad(param, grad, accumulator, scalars):
    """Adagrad: accumulate squared gradients, divide the step by their root."""
    _launch("adagrad_update", param, (grad, accumulator), scalars, ())
