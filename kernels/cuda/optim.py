"""Launchers for optim.cu: in-place SGD, Adam/AdamW/AMSGrad, RMSprop, Adagrad, Adamax, Nadam, Lion, Adadelta
and FTRL updates.

Arrays are C-contiguous and of one dtype; a state array the update does not use (velocity
without momentum, v_max without AMSGrad, ...) is passed as None and replaced by ``param``,
which the kernel then never reads. ``scalars`` is the step's tuple from
``nnengine/backends/optimizer_scalars.py``, already in the arrays' dtype: the kernels take
its fields by the same names and in the same order (as the numba kernels do). Or it is a
device array holding those fields in that order: the ``*_at`` kernels then read them from
device memory, which is how a CUDA Graph's update sees each step's scalars
(``nnengine/backends/cuda_graphs.py``).
"""
import numpy as np

from . import launch, loader

SOURCE = "optim.cu"
_i = np.int64


def on_device(scalars):
    """True when ``scalars`` is a device array of the scalars (read by an ``*_at`` kernel), not a tuple."""
    return not isinstance(scalars, tuple)


def _scalar_args(kernel, scalars):
    """(kernel name, its scalar arguments): the values themselves, or the device array that holds them."""
    return (kernel + "_at", [scalars]) if on_device(scalars) else (kernel, list(scalars))


def _launch(kernel, param, arrays, scalars, flags):
    grid, block = launch.grid_stride(param.size)
    kernel, scalar_args = _scalar_args(kernel, scalars)
    args = [param if a is None else a for a in arrays]
    args += [_i(param.size), *scalar_args, *(_i(bool(f)) for f in flags)]
    loader.function(SOURCE, kernel, param.dtype)(grid, block, tuple([param, *args]))


def sgd(param, grad, velocity, scalars, use_momentum, nesterov):
    """SGD with optional (Nesterov) momentum and decoupled weight decay (Keras's formula)."""
    _launch("sgd_update", param, (grad, velocity), scalars, (use_momentum, nesterov))


def adam(param, grad, m, v, v_max, scalars, amsgrad):
    """Adam / AdamW / AMSGrad (Keras's formula: bias corrections folded into the step size)."""
    _launch("adam_update", param, (grad, m, v, v_max), scalars, (amsgrad,))


#: as in optim.cu: tensors per multi-tensor launch, and arrays per tensor in its table
GROUP_SIZE = 24
GROUP_ARRAYS = 5
#: the C struct TensorGroup of optim.cu, field for field (all 8-byte fields: no padding either side)
TENSOR_GROUP = np.dtype([("array", np.uint64, (GROUP_ARRAYS, GROUP_SIZE)), ("start", np.int64, (GROUP_SIZE + 1,)),
                         ("count", np.int64)])


def tensor_group(columns):
    """The TensorGroup kernel parameter for ``columns``: one sequence of arrays per table row (param,
    grad, then state), each sequence of the same up to GROUP_SIZE tensors (None: the param, never read)."""
    params = columns[0]
    group = np.zeros(1, TENSOR_GROUP)
    for a, arrays in enumerate(columns):
        group["array"][0, a, :len(arrays)] = [loader.pointer(p if x is None else x) for x, p in zip(arrays, params)]
    group["start"][0, 1:len(params) + 1] = np.cumsum([p.size for p in params])
    group["count"] = len(params)
    return group


def adam_many(params, grads, ms, vs, v_maxes, scalars, amsgrad):
    """``adam`` for many tensors of one dtype: one launch per GROUP_SIZE tensors (a multi-tensor apply)."""
    kernel, scalar_args = _scalar_args("adam_update_many", scalars)
    function = loader.function(SOURCE, kernel, params[0].dtype)
    for first in range(0, len(params), GROUP_SIZE):
        part = slice(first, first + GROUP_SIZE)
        group = tensor_group([params[part], grads[part], ms[part], vs[part], v_maxes[part]])
        grid, block = launch.grid_stride(int(group["start"][0, group["count"][0]]))
        function(grid, block, (group, *scalar_args, _i(bool(amsgrad))))


def rmsprop(param, grad, mean_square, mean_grad, velocity, scalars, centered, use_momentum):
    """RMSprop, plain or centered, with optional momentum (epsilon inside the square root)."""
    _launch("rmsprop_update", param, (grad, mean_square, mean_grad, velocity), scalars, (centered, use_momentum))


def adamax(param, grad, m, u, scalars):
    """Adamax: the first moment, divided by the infinity norm of the gradients (Keras's formula)."""
    _launch("adamax_update", param, (grad, m, u), scalars, ())


def nadam(param, grad, m, v, scalars):
    """Nadam: Adam with Nesterov's look-ahead in the first moment (Keras's formula)."""
    _launch("nadam_update", param, (grad, m, v), scalars, ())


def lion(param, grad, m, scalars):
    """Lion: a step of lr in the sign of a blend of momentum and gradient (Keras's formula)."""
    _launch("lion_update", param, (grad, m), scalars, ())


def adadelta(param, grad, accumulated_grad, accumulated_delta, scalars):
    """Adadelta: steps scaled by the ratio of the running RMS of updates and of gradients (Keras's formula)."""
    _launch("adadelta_update", param, (grad, accumulated_grad, accumulated_delta), scalars, ())


def ftrl(param, grad, accumulator, linear, scalars):
    """FTRL-proximal: a per-coordinate rate from the accumulated squared gradients, weights from the linear term
    by a closed-form proximal step (Keras's formula)."""
    _launch("ftrl_update", param, (grad, accumulator, linear), scalars, ())


def adagrad(param, grad, accumulator, scalars):
    """Adagrad: accumulate squared gradients, divide the step by their root."""
    _launch("adagrad_update", param, (grad, accumulator), scalars, ())
