"""nnengine: a from-scratch neural-network engine.

Floors (see docs/ARCHITECTURE.md): ``nnengine.backends`` (one Backend interface,
a numpy reference and faster implementations), the core (``Tensor``, autograd,
``nnengine.functional``), and the Keras-style API built on them.

Quick start::

    import nnengine as nn
    x = nn.tensor([[1.0, 2.0]], requires_grad=True)
    (x * x).sum().backward()
    x.grad  # 2 * x

Keras-style::

    model = nn.Sequential([nn.layers.Dense(10, activation="softmax", input_shape=(4,))])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
"""
from . import backends, functional
from .autograd import enable_grad, is_grad_enabled, no_grad
from .backends import DeviceUnavailableError, get_backend, is_device_available
from .device import device, get_default_device, set_default_device
from .gradcheck import GradcheckError, GradcheckResult, gradcheck
from .tensor import Tensor, full, ones, tensor, zeros

__version__ = "0.2.0"

# The Keras-style API (floor 4); nnengine.keras exposes the same objects under Keras's names.
from . import activations, callbacks, initializers, keras, layers, losses, metrics, models, optimizers, utils  # noqa: E402
from .layers import Input  # noqa: E402
from .models import Sequential, load_model  # noqa: E402

__all__ = [
    "Tensor", "tensor", "zeros", "ones", "full",
    "no_grad", "enable_grad", "is_grad_enabled",
    "device", "get_default_device", "set_default_device", "get_backend", "is_device_available",
    "DeviceUnavailableError", "gradcheck", "GradcheckError", "GradcheckResult",
    "functional", "backends",
    "Sequential", "Input", "load_model", "keras", "layers", "activations", "losses", "metrics", "optimizers",
    "initializers", "callbacks", "models", "utils",
]
