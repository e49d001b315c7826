"""The numba backend's optimizer updates: each weight, its gradient and its slots in one pass of a kernel
of ``kernels/cpu/optim.py``, in place (the serial kernel, or the parallel one for large weights).

The scalars each kernel takes (bias corrections, decay factors) are computed once per call, in the weight's
dtype, by ``optimizer_scalars`` (the CUDA backend computes them the same way).
"""
import numpy as np

from ..kernels.cpu import config
from ..kernels.cpu.aot import kernel_modules
from .numba_layers import NumbaLayerPrimitives
from .optimizer_scalars import (adadelta_scalars, adagrad_scalars, adam_scalars, adamax_scalars, ftrl_scalars,
                                lion_scalars, nadam_scalars, rmsprop_scalars, sgd_scalars, typed_scalars)

_EMPTY = {}

# parallel kernels, each launched by one Python thread at a time (numba_backend's docstring says why)
optim, = kernel_modules("optim")     # ahead-of-time kernels while numba is not loaded (kernels/cpu/aot.py)

_sgd_parallel = config.OneThreadAtATime(optim, "sgd_parallel")
_adam_parallel = config.OneThreadAtATime(optim, "adam_parallel")
_rmsprop_parallel = config.OneThreadAtATime(optim, "rmsprop_parallel")
_adagrad_parallel = config.OneThreadAtATime(optim, "adagrad_parallel")
_adamax_parallel = config.OneThreadAtATime(optim, "adamax_parallel")
_nadam_parallel = config.OneThreadAtATime(optim, "nadam_parallel")
_lion_parallel = config.OneThreadAtATime(optim, "lion_parallel")
_adadelta_parallel = config.OneThreadAtATime(optim, "adadelta_parallel")
_ftrl_parallel = config.OneThreadAtATime(optim, "ftrl_parallel")


def _parallel(size):
    """Whether an update of ``size`` elements takes its parallel variant: updates stream (a few operations per
    element read and written), so they take config.PARALLEL_MIN_STREAMING_ELEMENTS."""
    return config.parallel(size, streaming=True)


class NumbaUpdatePrimitives(NumbaLayerPrimitives):
    """The optimizer-update primitives of the numba backend (see the module docstring)."""

    @staticmethod
    def _flat_state(param, *states):
        """Flat views of the parameter and its state; None becomes an empty array the kernel never reads."""
        for a in (param, *states):
            if a is not None and not a.flags.c_contiguous:
                raise ValueError("optimizer updates need C-contiguous arrays; the core creates parameters "
                                 "and optimizer state contiguous")
        empty = _EMPTY.get(param.dtype)
        if empty is None:
            empty = _EMPTY[param.dtype] = np.zeros(0, param.dtype)
        return [empty if a is None else a.reshape(-1) for a in (param, *states)]

    def sgd_update(self, param, grad, velocity, lr, momentum, nesterov, weight_decay):
        scalars = typed_scalars(sgd_scalars, param.dtype, lr, momentum, weight_decay)
        kernel = _sgd_parallel if _parallel(param.size) else optim.sgd
        kernel(*self._flat_state(param, grad, velocity), *scalars, bool(momentum), bool(nesterov))

    def adam_update(self, param, grad, m, v, v_max, *scalars):
        self.adam_update_many((param,), (grad,), (m,), (v,), (v_max,), *scalars)

    def adam_update_many(self, params, grads, ms, vs, v_maxes, step, lr, beta_1, beta_2, epsilon, amsgrad,
                         weight_decay):
        scalars = {}                 # our kernel per parameter (no launch cost on a CPU); the scalars once per dtype
        for arrays in zip(params, grads, ms, vs, v_maxes):
            dtype = arrays[0].dtype
            if dtype not in scalars:
                scalars[dtype] = typed_scalars(adam_scalars, dtype, step, lr, beta_1, beta_2, epsilon, weight_decay)
            kernel = _adam_parallel if _parallel(arrays[0].size) else optim.adam
            kernel(*self._flat_state(*arrays), *scalars[dtype], bool(amsgrad))

    def rmsprop_update(self, param, grad, mean_square, mean_grad, velocity, lr, rho, momentum, epsilon, centered,
                       weight_decay):
        scalars = typed_scalars(rmsprop_scalars, param.dtype, lr, rho, momentum, epsilon, weight_decay)
        kernel = _rmsprop_parallel if _parallel(param.size) else optim.rmsprop
        kernel(*self._flat_state(param, grad, mean_square, mean_grad, velocity), *scalars, bool(centered),
               momentum > 0)

    def adamax_update(self, param, grad, m, u, step, lr, beta_1, beta_2, epsilon, weight_decay):
        scalars = typed_scalars(adamax_scalars, param.dtype, step, lr, beta_1, beta_2, epsilon, weight_decay)
        kernel = _adamax_parallel if _parallel(param.size) else optim.adamax
        kernel(*self._flat_state(param, grad, m, u), *scalars)

    def nadam_update(self, param, grad, m, v, step, u_product, lr, beta_1, beta_2, epsilon, weight_decay):
        scalars = typed_scalars(nadam_scalars, param.dtype, step, u_product, lr, beta_1, beta_2, epsilon, weight_decay)
        kernel = _nadam_parallel if _parallel(param.size) else optim.nadam
        kernel(*self._flat_state(param, grad, m, v), *scalars)

    def lion_update(self, param, grad, m, lr, beta_1, beta_2, weight_decay):
        scalars = typed_scalars(lion_scalars, param.dtype, lr, beta_1, beta_2, weight_decay)
        kernel = _lion_parallel if _parallel(param.size) else optim.lion
        kernel(*self._flat_state(param, grad, m), *scalars)

    def adadelta_update(self, param, grad, accumulated_grad, accumulated_delta, lr, rho, epsilon, weight_decay):
        scalars = typed_scalars(adadelta_scalars, param.dtype, lr, rho, epsilon, weight_decay)
        kernel = _adadelta_parallel if _parallel(param.size) else optim.adadelta
        kernel(*self._flat_state(param, grad, accumulated_grad, accumulated_delta), *scalars)

    def ftrl_update(self, param, grad, accumulator, linear, lr, learning_rate_power, l1, l2, l2_shrinkage, beta,
                    weight_decay):
        scalars = typed_scalars(ftrl_scalars, param.dtype, lr, learning_rate_power, l1, l2, l2_shrinkage, beta,
                                weight_decay)
        kernel = _ftrl_parallel if _parallel(param.size) else optim.ftrl
        kernel(*self._flat_state(param, grad, accumulator, linear), *scalars)

    def adagrad_update(self, param, grad, accumulator, lr, epsilon, weight_decay):
        scalars = typed_scalars(adagrad_scalars, param.dtype, lr, epsilon, weight_decay)
        kernel = _adagrad_parallel if _parallel(param.size) else optim.adagrad
        kernel(*self._flat_state(param, grad, accumulator), *scalars)
