"""Weight constraints with Keras 3's names and formulas: applied to a weight after every optimizer step.

* MaxNorm(max_value=2, axis=0): w * clip(n, 0, max_value) / (1e-7 + n), n = sqrt(sum(w^2 over axis))
* NonNeg():                     w * (w >= 0)

On a Dense layer, ``kernel_constraint`` and ``bias_constraint``; a custom layer passes ``constraint=``
to ``add_weight``. fit applies them after each update, inside the compiled step, as Keras's optimizer does.
"""
from . import arguments
from . import functional as F
from .utils import resolve_keras_object, serialize_keras_object

__all__ = ["Constraint", "MaxNorm", "NonNeg", "get", "serialize"]


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
        self.axis = arguments.integer("MaxNorm", "axis", axis)

    def __call__(self, w):
        """w * clip(n, 0, max_value) / (1e-7 + n), the norms n taken over ``axis``."""
        norms = F.sqrt(F.sum(w * w, axis=self.axis, keepdims=True))
        return w * (F.clip(norms, 0.0, self.max_value) / (norms + 1e-7))

    def get_config(self):
        """{'max_value': ..., 'axis': ...}."""
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Set negative entries to zero."""

    def __call__(self, w):
        """w * (w >= 0)."""
        return w * F.compare("greater_equal", w, 0.0).astype(w.dtype)


_CLASSES = {"MaxNorm": MaxNorm, "NonNeg": NonNeg}
_BY_NAME = {"max_norm": MaxNorm, "non_neg": NonNeg, **_CLASSES}


def get(identifier):
    """None, a name ('max_norm', 'non_neg'), Keras's config dict, or a Constraint, as a Constraint (or None)."""
    return resolve_keras_object("constraint", identifier, Constraint, _CLASSES, _BY_NAME)


def serialize(constraint):
    """Keras 3's dict for a constraint, or None."""
    return serialize_keras_object("constraints", constraint)
