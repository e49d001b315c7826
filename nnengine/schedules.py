"""Learning-rate schedules with Keras 3's names, arguments and formulas (``optimizers.schedules``).

A schedule maps the optimizer's step count (the number of completed updates, 0 for the first step) to
a learning rate. Pass one as ``learning_rate`` to any optimizer; the optimizer evaluates it once per
step, before that step's update, as Keras does. Each is saved in the ``.h5`` training config as Keras
writes it (``{"module": "keras.optimizers.schedules", "class_name": ..., "config": ...}``).

With s the step and p = s / decay_steps (rounded down with ``staircase``):

* ExponentialDecay:       lr0 * rate^p
* InverseTimeDecay:       lr0 / (1 + rate * p)
* PiecewiseConstantDecay: values[i] for boundaries[i-1] < s <= boundaries[i]
* PolynomialDecay:        (lr0 - end) * (1 - min(s, T) / T)^power + end   (with ``cycle``, T grows to the
                          next multiple of decay_steps at or above s)
* CosineDecay:            lr0 * ((1 - alpha) * (1 + cos(pi * min(s, T) / T)) / 2 + alpha), after an optional
                          linear warmup from lr0 to ``warmup_target`` over ``warmup_steps``
* CosineDecayRestarts:    the cosine over periods T, T * t_mul, T * t_mul^2, ..., each restart scaled by m_mul
"""
import math

from . import arguments
from .utils import lookup

__all__ = ["LearningRateSchedule", "ExponentialDecay", "InverseTimeDecay", "PiecewiseConstantDecay",
           "PolynomialDecay", "CosineDecay", "CosineDecayRestarts", "serialize", "deserialize"]


class LearningRateSchedule:
    """Base class: ``schedule(step) -> float``; subclasses implement ``value(step)`` and list their arguments."""

    #: the constructor's arguments, in order: each is an attribute and a config key
    arguments = ()

    def __call__(self, step):
        """The learning rate at optimizer step ``step`` (0 for the first update), a float."""
        rate = self.value(float(step))
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) and not hasattr(rate, "__float__") or \
                isinstance(rate, (str, bytes)):
            raise TypeError(f"{type(self).__name__}: a schedule must return a number, got {rate!r} "
                            f"({type(rate).__name__}) at step {int(step)}")
        return float(rate)

    def value(self, step):
        """The formula (subclasses)."""
        raise NotImplementedError(f"{type(self).__name__} must implement value(step)")

    def get_config(self):
        """Keras 3's config: the constructor arguments and the name."""
        return {**{name: getattr(self, name) for name in self.arguments}, "name": self.name}

    @classmethod
    def from_config(cls, config):
        """Rebuild from a Keras config (keys nnengine does not use are ignored)."""
        return cls(**{k: v for k, v in config.items() if k in (*cls.arguments, "name")})

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self.arguments)})"


def _positive_steps(owner, name, value):
    return arguments.number(owner, name, value, low=0, low_open=True)


class _RateDecay(LearningRateSchedule):
    """What ExponentialDecay and InverseTimeDecay share: lr0, decay_steps, decay_rate, staircase (Keras's)."""

    arguments = ("initial_learning_rate", "decay_steps", "decay_rate", "staircase")

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        owner = type(self).__name__
        self.initial_learning_rate = arguments.number(owner, "initial_learning_rate", initial_learning_rate, low=0)
        self.decay_steps = _positive_steps(owner, "decay_steps", decay_steps)
        self.decay_rate = arguments.number(owner, "decay_rate", decay_rate, low=0)
        self.staircase = arguments.boolean(owner, "staircase", staircase)
        self.name = name or owner

    def _progress(self, step):
        """p = step / decay_steps, rounded down with ``staircase``."""
        p = step / self.decay_steps
        return math.floor(p) if self.staircase else p


class ExponentialDecay(_RateDecay):
    """lr0 * decay_rate ** (step / decay_steps), the exponent rounded down with ``staircase``."""

    def value(self, step):
        """lr0 * rate^p."""
        return self.initial_learning_rate * self.decay_rate ** self._progress(step)


class InverseTimeDecay(_RateDecay):
    """lr0 / (1 + decay_rate * step / decay_steps), the ratio rounded down with ``staircase``."""

    def value(self, step):
        """lr0 / (1 + rate * p)."""
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._progress(step))


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] up to and including boundaries[0], values[1] up to boundaries[1], ..., values[-1] after."""

    arguments = ("boundaries", "values")

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        owner = type(self).__name__
        if not isinstance(boundaries, (list, tuple)) or not isinstance(values, (list, tuple)):
            raise TypeError(f"{owner}: boundaries and values must be lists, got {type(boundaries).__name__} and "
                            f"{type(values).__name__}")
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"{owner}: values must have one more entry than boundaries, got {len(values)} values "
                             f"for {len(boundaries)} boundaries")
        self.boundaries = [arguments.number(owner, "boundaries", b) for b in boundaries]
        if any(b >= c for b, c in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(f"{owner}: boundaries must increase, got {self.boundaries}")
        self.values = [arguments.number(owner, "values", v, low=0) for v in values]
        self.name = name

    def value(self, step):
        """The value of the interval (boundaries[i-1], boundaries[i]] that holds ``step``."""
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]


class PolynomialDecay(LearningRateSchedule):
    """(lr0 - end) * (1 - step / decay_steps) ** power + end, from lr0 down to ``end_learning_rate``."""

    arguments = ("initial_learning_rate", "decay_steps", "end_learning_rate", "power", "cycle")

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False,
                 name="PolynomialDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = arguments.number(owner, "initial_learning_rate", initial_learning_rate, low=0)
        self.decay_steps = _positive_steps(owner, "decay_steps", decay_steps)
        self.end_learning_rate = arguments.number(owner, "end_learning_rate", end_learning_rate, low=0)
        self.power = arguments.number(owner, "power", power)
        self.cycle = arguments.boolean(owner, "cycle", cycle)
        self.name = name

    def value(self, step):
        """The polynomial; with ``cycle`` the period stretches to the next multiple of decay_steps."""
        period = self.decay_steps
        if self.cycle:
            period *= max(1.0, math.ceil(step / self.decay_steps))
        else:
            step = min(step, period)
        fraction = 1.0 - step / period
        return (self.initial_learning_rate - self.end_learning_rate) * fraction ** self.power + self.end_learning_rate


def _cosine(step, period, alpha):
    """(1 - alpha) * (1 + cos(pi * step / period)) / 2 + alpha: from 1 at step 0 down to alpha at ``period``."""
    return (1.0 - alpha) * 0.5 * (1.0 + math.cos(math.pi * step / period)) + alpha


class CosineDecay(LearningRateSchedule):
    """Cosine decay from lr0 (or from ``warmup_target`` after a linear warmup) to lr0 * alpha over decay_steps."""

    arguments = ("initial_learning_rate", "decay_steps", "alpha", "warmup_target", "warmup_steps")

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None,
                 warmup_steps=0):
        owner = type(self).__name__
        self.initial_learning_rate = arguments.number(owner, "initial_learning_rate", initial_learning_rate, low=0)
        self.decay_steps = _positive_steps(owner, "decay_steps", decay_steps)
        self.alpha = arguments.number(owner, "alpha", alpha, 0, 1)
        self.warmup_target = None if warmup_target is None else \
            arguments.number(owner, "warmup_target", warmup_target, low=0)
        self.warmup_steps = arguments.number(owner, "warmup_steps", warmup_steps, low=0)
        self.name = name

    def value(self, step):
        """Warmup (linear, when ``warmup_target`` is set), then the cosine from the peak."""
        if self.warmup_target is None:
            return self.initial_learning_rate * _cosine(min(step, self.decay_steps), self.decay_steps, self.alpha)
        if step < self.warmup_steps:
            return self.initial_learning_rate + (self.warmup_target - self.initial_learning_rate) * \
                step / self.warmup_steps
        decayed = min(step - self.warmup_steps, self.decay_steps)
        return self.warmup_target * _cosine(decayed, self.decay_steps, self.alpha)


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): periods first_decay_steps * t_mul^i, peaks lr0 * m_mul^i."""

    arguments = ("initial_learning_rate", "first_decay_steps", "t_mul", "m_mul", "alpha")

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0,
                 name="SGDRDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = arguments.number(owner, "initial_learning_rate", initial_learning_rate, low=0)
        self.first_decay_steps = _positive_steps(owner, "first_decay_steps", first_decay_steps)
        self.t_mul = arguments.number(owner, "t_mul", t_mul, low=0, low_open=True)
        self.m_mul = arguments.number(owner, "m_mul", m_mul, low=0)
        self.alpha = arguments.number(owner, "alpha", alpha, 0, 1)
        self.name = name

    def value(self, step):
        """Which restart i holds ``step``, how far into it, then the cosine scaled by m_mul^i.

        The periods T, T t, T t^2, ... end at T (1 - t^(i+1)) / (1 - t); solving for i gives
        i = floor(log(1 - f (1 - t)) / log t) with f = step / T (i = floor(f) when t = 1).
        """
        fraction = step / self.first_decay_steps
        if self.t_mul == 1.0:
            restart = math.floor(fraction)
            fraction -= restart
        else:
            restart = math.floor(math.log(1.0 - fraction * (1.0 - self.t_mul)) / math.log(self.t_mul))
            done = (1.0 - self.t_mul ** restart) / (1.0 - self.t_mul)
            fraction = (fraction - done) / self.t_mul ** restart
        peak = self.m_mul ** restart
        return self.initial_learning_rate * ((1.0 - self.alpha) * 0.5 * peak * (1.0 + math.cos(math.pi * fraction))
                                             + self.alpha)


_CLASSES = {cls.__name__: cls for cls in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay,
                                          PolynomialDecay, CosineDecay, CosineDecayRestarts)}


def serialize(schedule):
    """Keras 3's dict for a schedule, as it appears in an optimizer's config."""
    return {"module": "keras.optimizers.schedules", "class_name": type(schedule).__name__,
            "config": schedule.get_config(), "registered_name": None}


def deserialize(config):
    """A schedule from Keras's dict (only nnengine's own classes: nothing is imported)."""
    if not isinstance(config, dict) or not isinstance(config.get("config", {}), dict):
        raise TypeError(f"a learning-rate schedule config must be a dict with a 'config' dict, got {config!r:.80}")
    cls = lookup("learning-rate schedule", config.get("class_name"), _CLASSES)
    return cls.from_config(config.get("config") or {})
