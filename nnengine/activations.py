"""Activation functions, by name or as callables, with Keras 3's definitions and defaults.

Each takes a float Tensor and returns one; derivatives come from the core ops
they are written with. ``get(name)`` resolves the strings Keras accepts.
The activations that the fused dense primitive knows (``fused_name``: linear, relu,
sigmoid, tanh, softmax, from the one table in ``kernels/activation_codes.py``) run
inside ``Dense`` as part of one fused op; the others run after it.
"""
import math

from . import functional as F
from .backends import DENSE_ACTIVATIONS
from .utils import lookup

__all__ = ["linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "gelu", "softplus",
           "swish", "silu", "get", "name_of", "fused_name", "serialize"]


def linear(x):
    """The identity: f(x) = x."""
    return x


def relu(x):
    """Rectified linear unit: f(x) = max(x, 0)."""
    return F.relu(x)


def sigmoid(x):
    """Logistic sigmoid: f(x) = 1 / (1 + e^-x)."""
    return F.sigmoid(x)


def tanh(x):
    """Hyperbolic tangent."""
    return F.tanh(x)


def softmax(x, axis=-1):
    """Softmax along ``axis`` (the last by default): e^x_i / sum_j e^x_j, computed stably."""
    return F.softmax(x, axis)


def leaky_relu(x, negative_slope=0.2):
    """Leaky ReLU with Keras 3's default slope: f(x) = x if x > 0 else negative_slope * x."""
    return F.where(x > 0, x, x * negative_slope)


def elu(x, alpha=1.0):
    """Exponential linear unit: f(x) = x if x > 0 else alpha * (e^x - 1)."""
    # exp of min(x, 0) so that the branch not taken cannot overflow.
    return F.where(x > 0, x, (F.minimum(x, 0.0).exp() - 1.0) * alpha)


def gelu(x, approximate=False):
    """Gaussian error linear unit: f(x) = x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2.

    With ``approximate=True``, the tanh form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    Keras's default is the exact form.
    """
    if approximate:
        inner = (x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)
        return x * 0.5 * (F.tanh(inner) + 1.0)
    return x * 0.5 * (F.erf(x * (1.0 / math.sqrt(2.0))) + 1.0)


def softplus(x):
    """Softplus: f(x) = log(1 + e^x), written as max(x, 0) + log(1 + e^-|x|) so it never overflows."""
    negative_abs = F.minimum(x, -x)
    return F.relu(x) + (negative_abs.exp() + 1.0).log()


def swish(x):
    """Swish (SiLU): f(x) = x * sigmoid(x)."""
    return x * F.sigmoid(x)


silu = swish

_BY_NAME = {
    "linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax,
    "leaky_relu": leaky_relu, "elu": elu, "gelu": gelu, "softplus": softplus, "swish": swish,
    "silu": silu,
}



def get(identifier):
    """Resolve an activation: None (linear), a Keras name, or a callable.

    Raises ValueError listing the valid names for an unknown string, TypeError for anything else.
    """
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        return lookup("activation", identifier, _BY_NAME)
    if callable(identifier):
        return identifier
    raise TypeError(f"activation must be None, a name or a callable, got {type(identifier).__name__}")


def name_of(activation):
    """The registered name of an activation function ('swish' for silu too), or None for any other callable."""
    for name, function in _BY_NAME.items():
        if function is activation and name != "silu":
            return name
    return None


def fused_name(activation):
    """The name the fused dense primitive knows ``activation`` by ("none" for linear), or None.

    The fusable ones are those of the one table, ``kernels/activation_codes.py``; Dense runs them
    inside its one fused op and any other activation after it.
    """
    name = name_of(activation)
    name = "none" if name == "linear" else name
    return name if name in DENSE_ACTIVATIONS else None


def serialize(activation):
    """The name Keras writes in a config for ``activation``; ValueError for an unnamed callable."""
    name = name_of(activation)
    if name is not None:
        return name
    raise ValueError(f"activation {activation!r} is not one of nnengine's named activations and "
                     "cannot be saved; valid names: " + ", ".join(sorted(_BY_NAME)))
