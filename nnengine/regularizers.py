"""Weight and activity regularizers with Keras 3's names, defaults and formulas.

A regularizer maps a Tensor to a scalar penalty that is added to the loss (and to the loss that fit and
evaluate report, as Keras reports it):

* L1(l1=0.01):           l1 * sum(|x|)
* L2(l2=0.01):           l2 * sum(x^2)
* L1L2(l1=0.0, l2=0.0):  both

On a Dense layer, ``kernel_regularizer`` and ``bias_regularizer`` penalise the weights;
``activity_regularizer`` penalises the layer's output, divided by the batch size (as Keras 3 does).
"""
from . import arguments
from . import functional as F
from .tensor import full
from .utils import resolve_keras_object, serialize_keras_object

__all__ = ["Regularizer", "L1", "L2", "L1L2", "get", "serialize", "l1", "l2", "l1_l2"]


class Regularizer:
    """Base class: ``regularizer(x)`` is the penalty of Tensor ``x``, a 0-d Tensor."""

    def __call__(self, x):
        """The penalty: 0 here, as Keras's base returns (a subclass computes its own)."""
        return full((), 0.0, dtype=x.dtype, device=x.device)

    def get_config(self):
        """Keras's config: the factors."""
        return {}

    @classmethod
    def from_config(cls, config):
        """Rebuild from a Keras config."""
        return cls(**config)


def _l1(x, factor):
    return F.sum(F.maximum(x, -x)) * factor


def _l2(x, factor):
    return F.sum(x * x) * factor


class L1(Regularizer):
    """l1 * sum(|x|)."""

    def __init__(self, l1=0.01):
        self.l1 = arguments.number("L1", "l1", l1, low=0)

    def __call__(self, x):
        """l1 * sum(|x|)."""
        return _l1(x, self.l1)

    def get_config(self):
        """{'l1': ...}."""
        return {"l1": self.l1}


class L2(Regularizer):
    """l2 * sum(x^2)."""

    def __init__(self, l2=0.01):
        self.l2 = arguments.number("L2", "l2", l2, low=0)

    def __call__(self, x):
        """l2 * sum(x^2)."""
        return _l2(x, self.l2)

    def get_config(self):
        """{'l2': ...}."""
        return {"l2": self.l2}


class L1L2(Regularizer):
    """l1 * sum(|x|) + l2 * sum(x^2); either factor may be 0 (Keras's defaults are both 0)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = arguments.number("L1L2", "l1", l1, low=0)
        self.l2 = arguments.number("L1L2", "l2", l2, low=0)

    def __call__(self, x):
        """The sum of the two penalties that have a factor."""
        terms = ([_l1(x, self.l1)] if self.l1 else []) + ([_l2(x, self.l2)] if self.l2 else [])
        if not terms:
            return F.sum(x * 0.0)
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]

    def get_config(self):
        """{'l1': ..., 'l2': ...}."""
        return {"l1": self.l1, "l2": self.l2}


#: Keras's lower-case names of the same classes (``regularizers.l2(0.01)`` is ``L2(0.01)``)
l1, l2, l1_l2 = L1, L2, L1L2

_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2, **_CLASSES}


def get(identifier):
    """None, a name ('l1', 'l2', 'l1_l2'), Keras's config dict, or a Regularizer, as a Regularizer (or None)."""
    return resolve_keras_object("regularizer", identifier, Regularizer, _CLASSES, _BY_NAME)


def serialize(regularizer):
    """Keras 3's dict for a regularizer, or None."""
    return serialize_keras_object("regularizers", regularizer)
