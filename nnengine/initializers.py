"""Weight initializers with Keras 3's formulas, names and defaults.

An initializer is called with a shape and a dtype and returns a numpy array;
layers turn it into a Tensor on their device. Without a seed it draws from
nnengine's global generator (``nnengine.utils.set_random_seed``); with one, each
call repeats.

For a kernel of shape (fan_in, fan_out) the variance-scaling family draws with
variance scale / n, where n is fan_in, fan_out or their mean:

* GlorotUniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out))   (Keras's Dense default)
* GlorotNormal:  truncated N(0, s^2), s = sqrt(2 / (fan_in + fan_out)) / .8796...
* HeUniform / HeNormal: the same with scale 2 over fan_in
* LecunUniform / LecunNormal: scale 1 over fan_in
The constant .87962566103423978 is the standard deviation of a unit normal
truncated to [-2, 2]; dividing by it restores the intended variance.

Orthogonal (the recurrent layers' default for their recurrent kernel) draws a normal matrix and keeps
the Q of its QR decomposition, signs fixed by R's diagonal so that the draw is uniform over orthogonal
matrices; Identity is gain * I.
"""
import math
from abc import ABC, abstractmethod

import numpy as np

from .utils import global_rng, lookup

__all__ = ["Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform", "TruncatedNormal",
           "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform",
           "LecunNormal", "Orthogonal", "Identity", "get", "serialize", "zeros", "ones", "constant", "random_normal",
           "random_uniform", "truncated_normal", "variance_scaling", "orthogonal", "identity", "glorot_uniform",
           "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal", "OrthogonalInitializer",
           "IdentityInitializer"]

_TRUNCATED_STD = 0.87962566103423978


def compute_fans(shape):
    """(fan_in, fan_out) of a weight shape: a Dense kernel (in, out) gives (in, out)."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer(ABC):
    """Base class: ``initializer(shape, dtype)`` returns a numpy array of that shape and dtype."""

    def __init__(self, seed=None):
        self.seed = seed

    def _rng(self):
        return np.random.default_rng(self.seed) if self.seed is not None else global_rng()

    def __call__(self, shape, dtype="float32"):
        return np.asarray(self.sample(tuple(int(d) for d in shape), self._rng()), dtype=dtype)

    @abstractmethod
    def sample(self, shape, rng):
        """Draw the values (float64) for ``shape`` with generator ``rng``."""

    def get_config(self):
        """The constructor arguments, as Keras writes them in a model config."""
        return {"seed": self.seed}

    @classmethod
    def from_config(cls, config):
        """Rebuild from ``get_config()``'s dict."""
        return cls(**config)


class Zeros(Initializer):
    """All zeros (Keras's bias default)."""

    def __init__(self):
        super().__init__(None)

    def sample(self, shape, rng):
        """Zeros of ``shape``."""
        return np.zeros(shape)

    def get_config(self):
        """Zeros has no arguments."""
        return {}


class Ones(Zeros):
    """All ones."""

    def sample(self, shape, rng):
        """Ones of ``shape``."""
        return np.ones(shape)


class Constant(Initializer):
    """Every element equal to ``value``."""

    def __init__(self, value=0.0):
        super().__init__(None)
        self.value = float(value)

    def sample(self, shape, rng):
        """``value`` everywhere."""
        return np.full(shape, self.value)

    def get_config(self):
        """{'value': value}."""
        return {"value": self.value}


class RandomNormal(Initializer):
    """N(mean, stddev^2), Keras defaults mean 0, stddev 0.05."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def sample(self, shape, rng):
        """Normal draws."""
        return rng.normal(self.mean, self.stddev, shape)

    def get_config(self):
        """mean, stddev, seed."""
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class TruncatedNormal(RandomNormal):
    """N(mean, stddev^2) redrawn until within two standard deviations of the mean."""

    def sample(self, shape, rng):
        """Truncated normal draws."""
        return self.mean + self.stddev * _truncated_unit_normal(shape, rng)


class RandomUniform(Initializer):
    """U(minval, maxval), Keras defaults -0.05 and 0.05."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def sample(self, shape, rng):
        """Uniform draws."""
        return rng.uniform(self.minval, self.maxval, shape)

    def get_config(self):
        """minval, maxval, seed."""
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


def _truncated_unit_normal(shape, rng):
    """Unit normal draws, each redrawn until it lies in [-2, 2]."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2
    return values


class VarianceScaling(Initializer):
    """Draws with variance ``scale / n``, n = fan_in, fan_out or (fan_in + fan_out) / 2 (``mode``)."""

    MODES = ("fan_in", "fan_out", "fan_avg")
    DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if scale <= 0:
            raise ValueError(f"VarianceScaling: scale must be positive, got {scale}")
        if mode not in self.MODES:
            raise ValueError(f"VarianceScaling: mode must be one of {self.MODES}, got {mode!r}")
        if distribution not in self.DISTRIBUTIONS:
            raise ValueError(f"VarianceScaling: distribution must be one of {self.DISTRIBUTIONS}, "
                             f"got {distribution!r}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def sample(self, shape, rng):
        """Draws scaled to the fans of ``shape``."""
        return self.sample_with_fans(shape, rng, *compute_fans(shape))

    def sample_with_fans(self, shape, rng, fan_in, fan_out):
        """Draws of ``shape`` scaled to the fans given (a layer whose kernel is not (in, out) says which axes
        are its inputs: EinsumDense, as Keras's input_axes and output_axes)."""
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)          # U(-l, l) has variance l^2 / 3
            return rng.uniform(-limit, limit, shape)
        if self.distribution == "untruncated_normal":
            return math.sqrt(variance) * rng.standard_normal(shape)
        return math.sqrt(variance) / _TRUNCATED_STD * _truncated_unit_normal(shape, rng)

    def get_config(self):
        """scale, mode, distribution, seed."""
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed}


def _scaling(name, scale, mode, distribution):
    """A named VarianceScaling preset whose only argument is the seed, as Keras defines them."""

    def __init__(self, seed=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self):
        """{'seed': seed}: the preset's only argument."""
        return {"seed": self.seed}

    doc = f"VarianceScaling(scale={scale}, mode={mode!r}, distribution={distribution!r})."
    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config, "__doc__": doc,
                                           "__module__": __name__})


GlorotUniform = _scaling("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _scaling("HeUniform", 2.0, "fan_in", "uniform")
HeNormal = _scaling("HeNormal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _scaling("LecunUniform", 1.0, "fan_in", "uniform")
LecunNormal = _scaling("LecunNormal", 1.0, "fan_in", "truncated_normal")

class Orthogonal(Initializer):
    """A random orthogonal matrix times ``gain`` (rows = the product of every axis but the last)."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = float(gain)

    def sample(self, shape, rng):
        """Q of the QR decomposition of a normal draw, each column's sign set by R's diagonal."""
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: the shape must have at least 2 axes, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
        q = q * np.sign(np.diag(r))            # Q is unique (hence uniform) once R's diagonal is positive
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self):
        """gain, seed."""
        return {"seed": self.seed, "gain": self.gain}


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes; a rectangular one gets ones on its main diagonal)."""

    def __init__(self, gain=1.0):
        super().__init__(None)
        self.gain = float(gain)

    def sample(self, shape, rng):
        """gain * eye(rows, cols)."""
        if len(shape) != 2:
            raise ValueError(f"Identity: the shape must be 2-D, got {shape}")
        return self.gain * np.eye(*shape)

    def get_config(self):
        """{'gain': gain}."""
        return {"gain": self.gain}


_CLASSES = {cls.__name__: cls for cls in (
    Zeros, Ones, Constant, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling, GlorotUniform,
    GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal, Orthogonal, Identity)}
_CLASSES.update(OrthogonalInitializer=Orthogonal, IdentityInitializer=Identity)
_ALIASES = {"zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal, "normal": RandomNormal,
            "uniform": RandomUniform,
            "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
            "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
            "he_uniform": HeUniform, "he_normal": HeNormal, "lecun_uniform": LecunUniform,
            "lecun_normal": LecunNormal, "orthogonal": Orthogonal, "identity": Identity}


# Keras's lower-case names of the same classes (``initializers.he_normal()`` is ``HeNormal()``)
zeros, ones, constant, random_normal, random_uniform = Zeros, Ones, Constant, RandomNormal, RandomUniform
truncated_normal, variance_scaling, orthogonal, identity = TruncatedNormal, VarianceScaling, Orthogonal, Identity
glorot_uniform, glorot_normal, he_uniform, he_normal = GlorotUniform, GlorotNormal, HeUniform, HeNormal
lecun_uniform, lecun_normal = LecunUniform, LecunNormal
OrthogonalInitializer, IdentityInitializer = Orthogonal, Identity       # Keras 3's other class names


def get(identifier):
    """Resolve an initializer: a Keras name ('glorot_uniform'), a class name, a config dict or an instance."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        return lookup("initializer", identifier, {**_CLASSES, **_ALIASES}, _ALIASES)()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = lookup("initializer class", identifier["class_name"], _CLASSES)
        config = identifier.get("config") or {}
        if not isinstance(config, dict):
            raise TypeError(f"initializer {identifier['class_name']!r}: its 'config' must be a dict, got "
                            f"{type(config).__name__}")
        accepted = set(cls().get_config())
        return cls(**{k: v for k, v in config.items() if k in accepted})
    raise TypeError(f"initializer must be a name, a config dict or an Initializer, got {type(identifier).__name__}")


def serialize(initializer):
    """The Keras 3 config dict of an initializer."""
    return {"module": "keras.initializers", "class_name": type(initializer).__name__,
            "config": initializer.get_config(), "registered_name": None}
