"""Activation functions, by name or as callables, with Keras 3's definitions and defaults.

Each takes a float Tensor and returns one; derivatives come from the core ops
they are written with. ``get(name)`` resolves the strings Keras accepts (every
activation of Keras 3.15 but sparsemax), and a config names each as Keras 3
does (``silu`` for swish, ``hard_silu`` for hard_swish).
The activations that the fused dense primitive knows (``fused_name``: linear, relu,
sigmoid, tanh, softmax, from the one table in ``kernels/activation_codes.py``) run
inside ``Dense`` as part of one fused op; the others run after it.
"""
import math

from . import functional as F
from .backends import DENSE_ACTIVATIONS
from .utils import lookup

__all__ = ["linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "gelu", "softplus",
           "swish", "silu", "relu6", "selu", "celu", "softsign", "squareplus", "soft_shrink", "hard_shrink",
           "tanh_shrink", "hard_tanh", "sparse_plus", "threshold", "exponential", "hard_sigmoid", "sparse_sigmoid",
           "log_sigmoid", "hard_silu", "hard_swish", "mish", "log_softmax", "glu", "get", "name_of", "fused_name",
           "serialize"]

#: SELU's constants (Klambauer et al., 2017): the alpha and scale that keep activations at mean 0 and variance 1
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def linear(x):
    """The identity: f(x) = x."""
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Rectified linear unit: f(x) = max(x, 0), with Keras 3's options.

    ``threshold``: x is kept only where x > threshold (0 elsewhere); ``max_value``: the result is then clipped
    to [0, max_value]; ``negative_slope``: negative_slope * (x - threshold) is added below the threshold.
    """
    if not negative_slope and max_value is None and threshold == 0:
        return F.relu(x)
    kept = F.relu(x) if threshold == 0 else F.where(x > threshold, x, x * 0.0)
    if max_value is not None:
        kept = F.clip(kept, 0.0, max_value)
    if negative_slope:
        kept = kept - F.relu(threshold - x) * negative_slope
    return kept


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


def relu6(x):
    """ReLU capped at 6: f(x) = min(max(x, 0), 6)."""
    return F.clip(x, 0.0, 6.0)


def selu(x):
    """Scaled ELU: f(x) = scale * elu(x, alpha), with SELU_ALPHA and SELU_SCALE (self-normalising networks;
    use it with the lecun_normal initializer)."""
    return elu(x, SELU_ALPHA) * SELU_SCALE


def celu(x, alpha=1.0):
    """Continuously differentiable ELU: f(x) = max(x, 0) + min(alpha * (e^(x / alpha) - 1), 0)."""
    if not alpha > 0:
        raise ValueError(f"celu: alpha must be > 0, got {alpha}")
    return F.relu(x) + (F.minimum(x, 0.0) * (1.0 / alpha)).exp() * alpha - alpha


def softsign(x):
    """Softsign: f(x) = x / (|x| + 1)."""
    return x / (F.maximum(x, -x) + 1.0)


def squareplus(x, b=4):
    """Squareplus, a smooth ReLU made of a square root: f(x) = (x + sqrt(x^2 + b)) / 2, for b >= 0."""
    if not b >= 0:
        raise ValueError(f"squareplus: b must be >= 0, got {b}")
    return (x + (x * x + float(b)).sqrt()) * 0.5


def soft_shrink(x, threshold=0.5):
    """Soft shrinkage: x - threshold above threshold, x + threshold below -threshold, 0 between."""
    return F.where(x > threshold, x - threshold, F.where(x < -threshold, x + threshold, x * 0.0))


def hard_shrink(x, threshold=0.5):
    """Hard shrinkage: x where |x| > threshold, 0 elsewhere."""
    return F.where(F.maximum(x, -x) > threshold, x, x * 0.0)


def tanh_shrink(x):
    """f(x) = x - tanh(x)."""
    return x - F.tanh(x)


def hard_tanh(x):
    """tanh's piecewise-linear stand-in: f(x) = clip(x, -1, 1)."""
    return F.clip(x, -1.0, 1.0)


def sparse_plus(x):
    """A smooth ReLU with a quadratic knee: 0 for x <= -1, x for x >= 1, (x + 1)^2 / 4 between."""
    knee = (x + 1.0) * (x + 1.0) * 0.25
    return F.where(x <= -1.0, x * 0.0, F.where(x >= 1.0, x, knee))


def threshold(x, threshold, default_value):  # noqa: A002 - Keras's argument name
    """x where x > threshold, ``default_value`` elsewhere."""
    return F.where(x > threshold, x, x * 0.0 + default_value)


def exponential(x):
    """f(x) = e^x."""
    return x.exp()


def hard_sigmoid(x):
    """Keras 3's piecewise-linear sigmoid: f(x) = relu6(x + 3) / 6, i.e. clip(x / 6 + 1/2, 0, 1).

    (tf.keras 2.x used clip(0.2 x + 0.5, 0, 1); a Keras 3 file means this one.)
    """
    return relu6(x + 3.0) * (1.0 / 6.0)


def sparse_sigmoid(x):
    """0 for x <= -1, 1 for x >= 1, (x + 1) / 2 between."""
    return F.clip((x + 1.0) * 0.5, 0.0, 1.0)


def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x), stable for large |x|."""
    return -softplus(-x)


def hard_silu(x):
    """Hard SiLU (hard swish): f(x) = x * hard_sigmoid(x)."""
    return x * hard_sigmoid(x)


hard_swish = hard_silu


def mish(x):
    """Mish: f(x) = x * tanh(softplus(x))."""
    return x * F.tanh(softplus(x))


def log_softmax(x, axis=-1):
    """log(softmax(x)) along ``axis``: x - logsumexp(x), computed stably."""
    return F.log_softmax(x, axis)


def glu(x, axis=-1):
    """Gated linear unit: x split in halves a, b along ``axis`` (of even size); f(x) = a * sigmoid(b)."""
    size = x.shape[axis]
    if size % 2:
        raise ValueError(f"glu: axis {axis} must have an even size to split in two halves, got shape {x.shape}")
    before = (slice(None),) * (axis % x.ndim)
    first, second = F.getitem(x, (*before, slice(0, size // 2))), F.getitem(x, (*before, slice(size // 2, size)))
    return first * F.sigmoid(second)

_BY_NAME = {
    "linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax,
    "leaky_relu": leaky_relu, "elu": elu, "gelu": gelu, "softplus": softplus, "swish": swish,
    "silu": silu, "relu6": relu6, "selu": selu, "celu": celu, "softsign": softsign, "squareplus": squareplus,
    "soft_shrink": soft_shrink, "hard_shrink": hard_shrink, "tanh_shrink": tanh_shrink, "hard_tanh": hard_tanh,
    "sparse_plus": sparse_plus, "threshold": threshold, "exponential": exponential, "hard_sigmoid": hard_sigmoid,
    "sparse_sigmoid": sparse_sigmoid, "log_sigmoid": log_sigmoid, "hard_silu": hard_silu,
    "hard_swish": hard_swish, "mish": mish, "log_softmax": log_softmax, "glu": glu,
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
    """The name Keras 3 writes for an activation function ('silu' for swish too), or None for any other callable."""
    for name, function in _BY_NAME.items():
        if function is activation and name not in ("swish", "hard_swish"):
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
