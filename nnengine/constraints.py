"""Weight constraints with Keras 3's names and formulas: applied to a weight after every optimizer step.

* MaxNorm(max_value=2, axis=0): w * clip(n, 0, max_value) / (1e-7 + n), n = sqrt(sum(w^2 over axis))
* MinMaxNorm(min_value=0, max_value=1, rate=1, axis=0):
                                w * (rate * clip(n, min_value, max_value) + (1 - rate) * n) / (1e-7 + n)
* UnitNorm(axis=0):             w / (1e-7 + n)
* NonNeg():                     w * (w >= 0)

``axis`` is an int or a list of ints (``[0, 1, 2]`` for each filter of a Conv2D kernel), as in Keras; the
lower-case names (``max_norm``, ``min_max_norm``, ``unit_norm``, ``non_neg``) are the same classes.

On a Dense layer, ``kernel_constraint`` and ``bias_constraint``; a custom layer passes ``constraint=``
to ``add_weight``. fit applies them after each update, inside the compiled step, as Keras's optimizer does.
"""
from . import arguments
from . import functional as F
from .utils import resolve_keras_object, serialize_keras_object

__all__ = ["Constraint", "MaxNorm", "MinMaxNorm", "UnitNorm", "NonNeg", "max_norm", "min_max_norm", "unit_norm",
           "non_neg", "get", "serialize"]

EPSILON = 1e-7          # Keras's backend epsilon, which keeps a zero slice's division finite


def _axis(owner, axis):
    """``axis`` as an int, or a list of distinct ints (written back to configs as a list, as Keras does)."""
    if isinstance(axis, (list, tuple)):
        axes = [arguments.integer(owner, "axis", a) for a in axis]
        if not axes or len(set(axes)) != len(axes):
            raise ValueError(f"{owner}: axis must be an int or a list of distinct ints, got {axis!r}")
        return axes
    return arguments.integer(owner, "axis", axis)


def _norms(w, axis):
    """sqrt(sum(w^2)) over ``axis``, kept as axes of size 1 so that it broadcasts against w."""
    return F.sqrt(F.sum(w * w, axis=tuple(axis) if isinstance(axis, list) else axis, keepdims=True))


class Constraint:
    """Base class: ``constraint(w)`` is the projected weight, a Tensor of w's shape."""

    def __call__(self, w):
        """The projection of ``w``; subclasses override it. The base leaves ``w`` unchanged, as Keras's does."""
        return w

    def get_config(self):
        """Keras's config."""
        return {}

    @classmethod
    def from_config(cls, config):
        """Rebuild from a Keras config."""
        return cls(**config)


class MaxNorm(Constraint):
    """Rescale each slice along ``axis`` whose L2 norm exceeds ``max_value`` down to that norm."""

    def __init__(self, max_value=2, axis=0):
        self.max_value = arguments.number("MaxNorm", "max_value", max_value, low=0)
        self.axis = _axis("MaxNorm", axis)

    def __call__(self, w):
        """w * clip(n, 0, max_value) / (1e-7 + n), the norms n taken over ``axis``."""
        norms = _norms(w, self.axis)
        return w * (F.clip(norms, 0.0, self.max_value) / (norms + EPSILON))

    def get_config(self):
        """{'max_value': ..., 'axis': ...}."""
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(Constraint):
    """Move each slice's L2 norm into [min_value, max_value]: all the way with ``rate=1``, a fraction ``rate`` of
    the way per step otherwise."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = arguments.number("MinMaxNorm", "min_value", min_value, low=0)
        self.max_value = arguments.number("MinMaxNorm", "max_value", max_value, low=self.min_value)
        self.rate = arguments.number("MinMaxNorm", "rate", rate, 0, 1)
        self.axis = _axis("MinMaxNorm", axis)

    def __call__(self, w):
        """w * (rate * clip(n, min_value, max_value) + (1 - rate) * n) / (1e-7 + n), n the norms over ``axis``."""
        norms = _norms(w, self.axis)
        desired = F.clip(norms, self.min_value, self.max_value) * self.rate + norms * (1.0 - self.rate)
        return w * (desired / (norms + EPSILON))

    def get_config(self):
        """{'min_value': ..., 'max_value': ..., 'rate': ..., 'axis': ...}."""
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


class UnitNorm(Constraint):
    """Scale each slice along ``axis`` to an L2 norm of 1 (a zero slice stays zero)."""

    def __init__(self, axis=0):
        self.axis = _axis("UnitNorm", axis)

    def __call__(self, w):
        """w / (1e-7 + n), n the norms over ``axis``."""
        return w / (_norms(w, self.axis) + EPSILON)

    def get_config(self):
        """{'axis': ...}."""
        return {"axis": self.axis}


class NonNeg(Constraint):
    """Set negative entries to zero."""

    def __call__(self, w):
        """w * (w >= 0)."""
        return w * F.compare("greater_equal", w, 0.0).astype(w.dtype)


max_norm, min_max_norm, unit_norm, non_neg = MaxNorm, MinMaxNorm, UnitNorm, NonNeg     # Keras's lower-case names

_CLASSES = {"MaxNorm": MaxNorm, "MinMaxNorm": MinMaxNorm, "UnitNorm": UnitNorm, "NonNeg": NonNeg}
_BY_NAME = {"max_norm": MaxNorm, "min_max_norm": MinMaxNorm, "unit_norm": UnitNorm, "non_neg": NonNeg, **_CLASSES}


def get(identifier):
    """None, a name ('max_norm', 'min_max_norm', 'unit_norm', 'non_neg'), Keras's config dict, or a Constraint, as a
    Constraint (or None)."""
    return resolve_keras_object("constraint", identifier, Constraint, _CLASSES, _BY_NAME)


def serialize(constraint):
    """Keras 3's dict for a constraint, or None."""
    return serialize_keras_object("constraints", constraint)
