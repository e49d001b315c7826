"""Device strings, the default device (code, context manager, environment variable) and the registry."""
import os
import subprocess
import sys

import pytest

import nnengine as nn
from nnengine.backends import get_backend, parse_device, register_backend, registered_backends


@pytest.mark.parametrize("given, canonical", [
    ("cpu", "cpu"), ("numpy", "numpy"), ("cuda", "cuda:0"), ("cuda:2", "cuda:2"), (" CPU ", "cpu"),
])
def test_parse_device(given, canonical):
    assert parse_device(given) == canonical


@pytest.mark.parametrize("bad", ["gpu", "cpu:1", "cuda:x", "", "tpu:0"])
def test_parse_device_rejects_unknown(bad):
    with pytest.raises(ValueError, match="device"):
        parse_device(bad)


def test_parse_device_rejects_non_strings():
    with pytest.raises(TypeError, match="device must be a string"):
        parse_device(0)


def test_default_device_set_in_code_and_by_context():
    assert nn.get_default_device() == "cpu"
    try:
        nn.set_default_device("numpy")
        assert nn.tensor([1.0]).device == "numpy"
        with nn.device("cpu") as name:
            assert name == "cpu" and nn.zeros(2).device == "cpu"
            with nn.device("numpy"):
                assert nn.ones(1).device == "numpy"
            assert nn.get_default_device() == "cpu"
        assert nn.get_default_device() == "numpy"
    finally:
        nn.set_default_device(None)
    assert nn.get_default_device() == "cpu"


def test_default_device_from_environment(monkeypatch):
    monkeypatch.setenv("NNENGINE_DEVICE", "numpy")
    nn.set_default_device(None)  # forget the cached value so the variable is read again
    try:
        assert nn.tensor([1.0]).device == "numpy"
    finally:
        monkeypatch.delenv("NNENGINE_DEVICE")
        nn.set_default_device(None)


def test_environment_variable_in_a_fresh_process():
    env = dict(os.environ, NNENGINE_DEVICE="numpy")
    out = subprocess.run([sys.executable, "-c", "import nnengine as nn; print(nn.tensor([1.0]).device)"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "numpy"


def test_cuda_without_a_backend_is_a_clear_error():
    if nn.is_device_available("cuda"):
        pytest.skip("a CUDA backend is available here")
    with pytest.raises(nn.DeviceUnavailableError, match="'cuda:0' is not available|nnengine\\[cuda1[23]\\]"):
        nn.tensor([1.0], device="cuda")


def test_register_backend_replaces_a_kind():
    original = registered_backends()["numpy"]
    numpy_backend = get_backend("numpy")

    class Recording(original):
        name = "recording"

    try:
        register_backend("numpy", Recording)
        assert isinstance(get_backend("numpy"), Recording)
    finally:
        register_backend("numpy", original)
    assert type(get_backend("numpy")) is type(numpy_backend)
    with pytest.raises(ValueError, match="unknown device kind"):
        register_backend("tpu", original)
