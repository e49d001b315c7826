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
import importlib.util as _importlib_util
import sys as _sys
from pathlib import Path as _Path


def _kernels_from_checkout():
    """Map ``nnengine.kernels`` to the checkout's ``kernels/`` when nnengine is used uninstalled.

    An install (``pip install -e .`` included) maps it through setup.py's package_dir. A bare
    checkout on sys.path, as on a machine where pip cannot run, finds ``kernels/`` beside us.
    """
    if _importlib_util.find_spec(__name__ + ".kernels") is not None:
        return
    init = _Path(__file__).resolve().parent.parent / "kernels" / "__init__.py"
    spec = _importlib_util.spec_from_file_location(
        __name__ + ".kernels", init, submodule_search_locations=[str(init.parent)])
    module = _importlib_util.module_from_spec(spec)
    _sys.modules[spec.name] = module
    spec.loader.exec_module(module)


_kernels_from_checkout()

from . import backends, functional  # noqa: E402
from .autograd import enable_grad, is_grad_enabled, no_grad  # noqa: E402
from .capture import CaptureError  # noqa: E402
from .capture_jit import jit  # noqa: E402
from .backends import (DeviceUnavailableError, are_deterministic_algorithms_enabled, get_backend,  # noqa: E402
                       is_device_available, use_deterministic_algorithms)
from .device import device, get_default_device, set_default_device  # noqa: E402
from .gradcheck import GradcheckError, GradcheckResult, gradcheck  # noqa: E402
from .tensor import Tensor, full, ones, tensor, zeros  # noqa: E402

from .version import __version__  # noqa: E402

# The Keras-style API (floor 4); nnengine.keras exposes the same objects under Keras's names.
from . import activations, callbacks, initializers, keras, layers, losses, metrics, models, optimizers  # noqa: E402
from . import regularizers, utils  # noqa: E402
from .layers import Input  # noqa: E402
from .models import Sequential, load_model  # noqa: E402
from .h5io import ModelFileError  # noqa: E402

__all__ = [
    "Tensor", "tensor", "zeros", "ones", "full",
    "no_grad", "enable_grad", "is_grad_enabled",
    "device", "get_default_device", "set_default_device", "get_backend", "is_device_available",
    "use_deterministic_algorithms", "are_deterministic_algorithms_enabled",
    "DeviceUnavailableError", "gradcheck", "GradcheckError", "GradcheckResult", "jit", "CaptureError",
    "functional", "backends",
    "Sequential", "Input", "load_model", "ModelFileError", "keras", "layers", "activations", "losses", "metrics", "optimizers",
    "initializers", "callbacks", "models", "regularizers", "utils",
]
