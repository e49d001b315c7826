"""The optimizer base class: learning rate (or schedule), step counter, per-parameter slots, Keras 3's
gradient clipping and config; ``optimizers.py`` holds the update rules built on it.

Each optimizer keeps per-parameter state ("slots") as Tensors on the parameter's device and
calls one fused primitive per parameter per step (``nnengine.functional.*_update``).
``weight_decay`` on any optimizer is Keras's decoupled decay, applied before the step.

``learning_rate`` may be a schedule (schedules.py): it is evaluated at the number of completed steps,
once per step, before the update. Gradient clipping, as Keras 3 applies it before every update:

* ``clipnorm``:        g * clipnorm / max(||g||, clipnorm), for each gradient on its own
* ``global_clipnorm``: every g * clipnorm / max(sqrt(sum of all ||g||^2), clipnorm)
* ``clipvalue``:       clip(g, -clipvalue, clipvalue)
(only the first one set applies, in that order, as in Keras).
"""
import math
from abc import ABC, abstractmethod

import numpy as np

from . import arguments
from . import functional as F
from . import schedules
from .autograd import no_grad
from .tensor import zeros

__all__ = ["Optimizer", "positive", "fraction"]


def positive(owner, name, value, allow_zero=False):
    """A finite number > 0 (>= 0 with ``allow_zero``); a string or bool is a TypeError, not parsed."""
    return arguments.number(owner, name, value, low=0, low_open=not allow_zero)


def fraction(owner, name, value, high_open=True):
    """A number in [0, 1) (in [0, 1] without ``high_open``): betas, rho, momentum."""
    return arguments.number(owner, name, value, low=0, high=1, high_open=high_open)


class _RateFunction(schedules.LearningRateSchedule):
    """A learning rate given as a function of no arguments (Keras allows it): called at every step."""

    def __init__(self, function):
        self.function, self.name = function, getattr(function, "__name__", "learning_rate")

    def value(self, step):
        """``function()``, whatever the step."""
        return self.function()


def _norm(grad):
    """||g||, the L2 norm of all of a gradient's entries (a 0-d tensor on its device)."""
    return F.sqrt(F.sum(grad * grad))


def _sum_all(tensors):
    total = tensors[0]
    for tensor in tensors[1:]:
        total = total + tensor
    return total


def _scaled_to_norm(grad, norm, clip):
    """g * clip / max(norm, clip): unchanged when norm <= clip, else rescaled to norm ``clip``."""
    return grad * clip / F.maximum(norm, clip)


def _check_gradient(owner, grad, param):
    """The one check a step needs: the slots are the optimizer's own, so only the gradient can disagree."""
    if grad.shape != param.shape or grad.dtype != param.dtype or grad.device != param.device:
        raise ValueError(f"{owner}: the gradient ({grad.shape}, {grad.dtype.name}, {grad.device}) does not match "
                         f"its parameter ({param.shape}, {param.dtype.name}, {param.device})")
    if not param.dtype.kind == "f":
        raise TypeError(f"{owner}: parameters must be float32 or float64, got {param.dtype.name}")


class Optimizer(ABC):
    """Base class: holds the learning rate, the step counter and the slots of each parameter.

    ``apply_gradients([(grad, param), ...])`` (or ``apply(grads, params)``) runs one step;
    ``step(params)`` uses each parameter's ``.grad``. The step counter ``iterations``
    counts completed steps.
    """

    #: Keras's names of the per-parameter slots, in the order Keras saves them
    slot_names = ()
    #: slots Keras stores after the others, each in a group of its own (``slot_groups``)
    grouped_slots = ()
    #: the constructor's own arguments, kept as attributes of the same names: each goes into the
    #: config and comes back through from_config (one list, so the two cannot disagree)
    hyper_parameters = ()

    def __init__(self, learning_rate, weight_decay=None, name=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None):
        self.name = arguments.text(type(self).__name__, "name", name, optional=True) or type(self).__name__.lower()
        self.schedule = None
        if isinstance(learning_rate, dict):                  # a schedule's config, as Keras saves it
            learning_rate = schedules.deserialize(learning_rate)
        if isinstance(learning_rate, schedules.LearningRateSchedule):
            self.schedule = learning_rate
        elif callable(learning_rate):           # Keras: a function of no arguments, read at every step
            self.schedule = _RateFunction(learning_rate)
        else:
            self.learning_rate = learning_rate
        self.weight_decay = None if weight_decay is None else positive(self.name, "weight_decay", weight_decay,
                                                                        allow_zero=True)
        self.clipnorm, self.clipvalue, self.global_clipnorm = (
            None if value is None else positive(self.name, label, value)
            for label, value in (("clipnorm", clipnorm), ("clipvalue", clipvalue), ("global_clipnorm", global_clipnorm)))
        if self.clipnorm is not None and self.global_clipnorm is not None:
            raise ValueError(f"{self.name}: give clipnorm or global_clipnorm, not both (as Keras requires)")
        self.iterations = 0
        self._slots = {}

    @property
    def learning_rate(self):
        """The step size of the next step, a float: the schedule's value at ``iterations`` when there is one.

        Assignable when it is a float (ReduceLROnPlateau lowers it); a schedule's is not, as in Keras.
        """
        return self._learning_rate if self.schedule is None else self.schedule(self.iterations)

    @learning_rate.setter
    def learning_rate(self, value):
        if getattr(self, "schedule", None) is not None:
            raise TypeError(f"{self.name}: the learning rate comes from a {type(self.schedule).__name__} schedule, "
                            "so it cannot be set (as in Keras)")
        self._learning_rate = positive(self.name, "learning_rate", value, allow_zero=True)

    def _step_learning_rate(self):
        """The learning rate of the step being taken (``iterations`` already counts it)."""
        if self.schedule is None:
            return self._learning_rate
        rate = self.schedule(self.iterations - 1)
        if not math.isfinite(rate) or rate < 0:
            raise ValueError(f"{self.name}: the {type(self.schedule).__name__} schedule gave learning rate {rate} "
                             f"at step {self.iterations - 1}; it must be a finite number >= 0")
        return rate

    def _decay(self):
        return self.weight_decay or 0.0

    def slots(self, param):
        """The state Tensors of ``param``, by slot name (created as Keras starts them on first use)."""
        key = id(param)
        if key not in self._slots:
            self._slots[key] = (param, {name: self._initial_slot(name, param) for name in self.active_slot_names()})
        return self._slots[key][1]

    def active_slot_names(self):
        """The names of the slots this configuration keeps per parameter (Keras's names, its save order)."""
        return self.slot_names

    def slot_groups(self):
        """Keras 3's order of the slots a ``.weights.h5`` file stores by position: groups of slot names, each
        interleaved weight by weight; the names in ``grouped_slots`` come after, each a group of its own."""
        names = self.active_slot_names()
        return [group for group in [tuple(n for n in names if n not in self.grouped_slots)]
                + [(n,) for n in names if n in self.grouped_slots] if group]

    @property
    def has_state(self):
        """True once a step has created slots (before that there is nothing to save or move)."""
        return bool(self._slots)

    def slot_variables(self):
        """Every slot as ``(param, slot_name, Tensor)``, parameter by parameter in first-use order."""
        return [(param, name, tensor) for param, slots in self._slots.values() for name, tensor in slots.items()]

    def _initial_slot(self, name, param):
        return zeros(param.shape, dtype=param.dtype, device=param.device)

    #: whether ``exchange_gradients`` does anything (the trainer then compiles a step as two plans around it)
    exchanges_gradients = False

    def exchange_gradients(self, backend, grad_arrays):
        """A host step between a step's gradients and its update, on ``backend``'s arrays (None entries kept):
        the identity here; DistributedOptimizer averages them across processes."""
        return grad_arrays

    def apply_gradients(self, grads_and_vars):
        """One step over ``[(grad, param), ...]``; a None gradient leaves its parameter alone. An optimizer that
        exchanges gradients (DistributedOptimizer) does so first, as the trainer's step does."""
        pairs = [(g, p) for g, p in grads_and_vars if g is not None]
        for grad, param in pairs:
            _check_gradient(self.name, grad, param)
        if self.exchanges_gradients and pairs:
            if len({grad.device for grad, _ in pairs}) > 1:
                raise ValueError(f"{self.name}: the gradients are on different devices "
                                 f"{sorted({grad.device for grad, _ in pairs})}; exchange them from one device")
            exchanged = self.exchange_gradients(pairs[0][0]._backend, [grad._data for grad, _ in pairs])
            pairs = [(type(grad)._make(value, grad._backend), param) for value, (grad, param) in zip(exchanged, pairs)]
        self._update_all(pairs)

    def apply_prepared(self, params, grad_arrays):
        """One step from backend gradient arrays that the trainer made for ``params`` (None: leave it alone).

        The same updates as ``apply_gradients``, without its checks: the trainer's step computed each
        gradient for its parameter, so shape, dtype and device agree by construction.
        """
        self._update_all([(type(p)._make(g, p._backend), p) for g, p in zip(grad_arrays, params) if g is not None])

    def _update_all(self, pairs):
        """One step: count it, clip the gradients if asked, then update each parameter of the checked pairs."""
        self.iterations += 1
        with no_grad():
            self.update_many(self._clipped(pairs))

    def update_many(self, pairs):
        """Update the parameter of every checked ``(grad, param)`` pair: ``update`` on each. An optimizer
        whose backends update many parameters at once (Adam) overrides this."""
        for grad, param in pairs:
            self.update(param, grad, self.slots(param))

    def _clipped(self, pairs):
        """The ``(grad, param)`` pairs with Keras's gradient clipping applied (see the module docstring)."""
        if self.clipnorm is not None:
            return [(_scaled_to_norm(grad, _norm(grad), self.clipnorm), param) for grad, param in pairs]
        if self.global_clipnorm is not None and pairs:
            total = F.sqrt(_sum_all([F.sum(grad * grad) for grad, _ in pairs]))
            return [(_scaled_to_norm(grad, total, self.global_clipnorm), param) for grad, param in pairs]
        if self.clipvalue is not None:
            return [(F.clip(grad, -self.clipvalue, self.clipvalue), param) for grad, param in pairs]
        return pairs

    def apply(self, grads, variables):
        """Keras 3's ``apply(grads, trainable_variables)``."""
        self.apply_gradients(zip(grads, variables))

    def step(self, params):
        """One step with each parameter's ``.grad``; the gradients are then reset to None."""
        self.apply_gradients([(p.grad, p) for p in params])
        for p in params:
            p.zero_grad()

    @abstractmethod
    def update(self, param, grad, slots):
        """Update ``param`` in place from ``grad`` and its ``slots`` (subclasses)."""

    @abstractmethod
    def update_scalars(self):
        """The scalar arguments that end this optimizer's backend update call, in its order, for this step.

        ``update`` passes exactly these, and a compiled step reads them anew before each replay (the step
        count and the learning rate change between steps), so the two cannot disagree.
        """

    def build(self, params):
        """Create the slots of every parameter now (Keras's ``optimizer.build``), not at its first update."""
        for param in params:
            self.slots(param)

    def has_slots_for(self, params):
        """True when every parameter in ``params`` has its slots (after its first update, or ``build``)."""
        return all(id(param) in self._slots for param in params)

    def variables(self):
        """Keras's save order: ("iteration", n), ("learning_rate", lr), then (slot_name, Tensor, param) per slot."""
        pairs = [("iteration", np.int64(self.iterations)), ("learning_rate", np.float32(self.learning_rate))]
        return pairs + [(name, tensor, param) for param, name, tensor in self.slot_variables()]

    def extra_variables(self):
        """(Keras's name, value) of state Keras saves after the slots, its name not prefixed by the optimizer's
        (Nadam's u_product); none here. nnengine derives such state from the step count, so it is written for
        Keras and not read back."""
        return []

    def get_config(self):
        """Keras 3's optimizer config."""
        rate = self.learning_rate if self.schedule is None or isinstance(self.schedule, _RateFunction) else \
            schedules.serialize(self.schedule)
        return {"name": self.name, "learning_rate": rate, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue,
                "use_ema": False,
                "ema_momentum": 0.99, "ema_overwrite_frequency": None, "loss_scale_factor": None,
                "gradient_accumulation_steps": None, **{key: getattr(self, key) for key in self.hyper_parameters}}

    @classmethod
    def from_config(cls, config):
        """Rebuild from a Keras config, ignoring keys nnengine has no use for; refuse features it lacks."""
        for key in ("loss_scale_factor", "gradient_accumulation_steps"):
            if config.get(key) is not None:
                raise ValueError(f"optimizer {cls.__name__}: {key} is not supported by nnengine")
        if config.get("use_ema"):
            raise ValueError(f"optimizer {cls.__name__}: use_ema is not supported by nnengine")
        accepted = cls._argument_names()
        return cls(**{k: v for k, v in config.items() if k in accepted})

    @classmethod
    def _argument_names(cls):
        """The keyword arguments the constructor takes (from_config passes only these)."""
        return {"learning_rate", "weight_decay", "name", "clipnorm", "clipvalue", "global_clipnorm",
                *cls.hyper_parameters}
