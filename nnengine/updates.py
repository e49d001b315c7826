"""In-place optimizer steps on Tensors: the backend's fused update primitives behind argument checks.

Part of the functional API (``nnengine.functional`` re-exports every name). Each step checks
that the parameter, its gradient and its state tensors agree in shape, dtype and device, then
calls one fused backend primitive, which updates them in place with Keras's formula.
"""
from .autograd import _common_backend
from .dtypes import is_float_dtype

__all__ = ["sgd_update", "adam_update", "rmsprop_update", "adagrad_update", "adamax_update", "nadam_update",
           "lion_update", "adadelta_update", "ftrl_update"]


def _check_update(name, param, grad, **state):
    """Check that param, grad and the state tensors share shape, dtype and device."""
    if not is_float_dtype(param.dtype):
        raise TypeError(f"{name}: parameters must be float32 or float64, got {param.dtype.name}")
    if grad is None:
        raise ValueError(f"{name}: the parameter has no gradient (.grad is None); call backward() first")
    tensors = {"grad": grad, **{k: v for k, v in state.items() if v is not None}}
    _common_backend(name, [param, *tensors.values()])
    for label, t in tensors.items():
        if t.shape != param.shape or t.dtype != param.dtype:
            raise ValueError(f"{name}: {label} must match the parameter's shape {param.shape} and dtype "
                             f"{param.dtype.name}, got {t.shape} {t.dtype.name}")


def _missing(name, label):
    return ValueError(f"{name}: this configuration needs the state tensor {label!r}")


def _array(t):
    return None if t is None else t._data


def sgd_update(param, grad, velocity=None, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, *,
               validate=True):
    """In place SGD step with Keras's formula and defaults (lr 0.01); ``velocity`` is needed when momentum > 0.

    ``validate=False`` skips the shape/dtype/device checks, for callers (the optimizers) that created the
    state themselves and checked the gradient; every update function takes it.
    """
    if validate:
        _check_update("sgd_update", param, grad, velocity=velocity)
    if momentum and velocity is None:
        raise _missing("sgd_update", "velocity")
    param.backend.sgd_update(param._data, grad._data, _array(velocity), lr, momentum, nesterov, weight_decay)


def adam_update(param, grad, m, v, step, v_max=None, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                amsgrad=False, weight_decay=0.0, *, validate=True):
    """In place Adam step (AdamW when ``weight_decay`` > 0) with Keras's formula and defaults.

    ``step`` counts updates from 1. ``m`` and ``v`` (and ``v_max`` for AMSGrad) start as zeros.
    """
    if validate:
        _check_update("adam_update", param, grad, m=m, v=v, v_max=v_max)
    if int(step) < 1:
        raise ValueError(f"adam_update: step counts updates from 1, got {step}")
    if amsgrad and v_max is None:
        raise _missing("adam_update", "v_max")
    param.backend.adam_update(param._data, grad._data, m._data, v._data, _array(v_max), int(step), lr,
                              beta_1, beta_2, epsilon, amsgrad, weight_decay)


def rmsprop_update(param, grad, mean_square, mean_grad=None, velocity=None, lr=0.001, rho=0.9,
                   momentum=0.0, epsilon=1e-7, centered=False, weight_decay=0.0, *, validate=True):
    """In place RMSprop step with Keras's formula (epsilon inside the square root) and defaults."""
    if validate:
        _check_update("rmsprop_update", param, grad, mean_square=mean_square, mean_grad=mean_grad,
                      velocity=velocity)
    if centered and mean_grad is None:
        raise _missing("rmsprop_update", "mean_grad")
    if momentum and velocity is None:
        raise _missing("rmsprop_update", "velocity")
    param.backend.rmsprop_update(param._data, grad._data, mean_square._data, _array(mean_grad),
                                 _array(velocity), lr, rho, momentum, epsilon, centered, weight_decay)


def adagrad_update(param, grad, accumulator, lr=0.001, epsilon=1e-7, weight_decay=0.0, *, validate=True):
    """In place Adagrad step with Keras's formula; Keras starts ``accumulator`` at 0.1."""
    if validate:
        _check_update("adagrad_update", param, grad, accumulator=accumulator)
    param.backend.adagrad_update(param._data, grad._data, accumulator._data, lr, epsilon, weight_decay)


def adamax_update(param, grad, m, u, step, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0, *,
                  validate=True):
    """In place Adamax step number ``step`` (from 1) with Keras's formula: the first moment ``m``, divided by the
    infinity norm ``u`` of the gradients (both start at 0)."""
    if validate:
        _check_update("adamax_update", param, grad, m=m, u=u)
    param.backend.adamax_update(param._data, grad._data, m._data, u._data, int(step), lr, beta_1, beta_2, epsilon,
                                weight_decay)


def nadam_update(param, grad, m, v, step, u_product, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=0.0, *, validate=True):
    """In place Nadam step number ``step`` (from 1) with Keras's formula; ``u_product`` is the product of the
    momentum schedule u_1 ... u_step, u_t = beta_1 (1 - 0.5 * 0.96^t) (``Nadam`` keeps it)."""
    if validate:
        _check_update("nadam_update", param, grad, m=m, v=v)
    param.backend.nadam_update(param._data, grad._data, m._data, v._data, int(step), float(u_product), lr, beta_1,
                               beta_2, epsilon, weight_decay)


def lion_update(param, grad, m, lr=0.001, beta_1=0.9, beta_2=0.99, weight_decay=0.0, *, validate=True):
    """In place Lion step with Keras's formula: a step of ``lr`` in the sign of beta_1 m + (1 - beta_1) g."""
    if validate:
        _check_update("lion_update", param, grad, m=m)
    param.backend.lion_update(param._data, grad._data, m._data, lr, beta_1, beta_2, weight_decay)


def adadelta_update(param, grad, accumulated_grad, accumulated_delta, lr=0.001, rho=0.95, epsilon=1e-7,
                    weight_decay=0.0, *, validate=True):
    """In place Adadelta step with Keras's formula: running means of g^2 and of the squared updates."""
    if validate:
        _check_update("adadelta_update", param, grad, accumulated_grad=accumulated_grad,
                      accumulated_delta=accumulated_delta)
    param.backend.adadelta_update(param._data, grad._data, accumulated_grad._data, accumulated_delta._data, lr, rho,
                                  epsilon, weight_decay)


def ftrl_update(param, grad, accumulator, linear, lr=0.001, learning_rate_power=-0.5, l1=0.0, l2=0.0,
                l2_shrinkage=0.0, beta=0.0, weight_decay=0.0, *, validate=True):
    """In place FTRL-proximal step with Keras's formula: per-coordinate rates from the accumulated squared
    gradients (``accumulator``), the weights solved in closed form from the ``linear`` term with L1 and L2."""
    if validate:
        _check_update("ftrl_update", param, grad, accumulator=accumulator, linear=linear)
    param.backend.ftrl_update(param._data, grad._data, accumulator._data, linear._data, lr, learning_rate_power, l1,
                              l2, l2_shrinkage, beta, weight_decay)
