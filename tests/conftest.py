"""Shared fixtures: every test that takes ``device`` runs once per backend device.

GPU cases skip cleanly when no CUDA backend or device is available. Hypothesis (optional:
without it the property-test modules skip and the rest runs) runs a bounded number of examples so CI stays fast; set HYPOTHESIS_PROFILE=thorough
for a longer search.
"""
import os

import numpy as np
import pytest

import nnengine as nn

try:        # optional: without hypothesis its modules skip (importorskip) and the rest still runs
    from hypothesis import HealthCheck, settings
except ImportError:
    settings = None
if settings is not None:
    settings.register_profile("ci", max_examples=20, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("thorough", max_examples=300, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DEVICES = ("numpy", "cpu", "cuda")


@pytest.fixture(params=DEVICES, scope="session")
def device(request):
    """A device string whose backend is available here; unavailable ones skip."""
    if not nn.is_device_available(request.param):
        pytest.skip(f"no backend for {request.param!r} on this machine")
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"], scope="session")
def float_dtype(request):
    """Both supported float dtypes."""
    return np.dtype(request.param)


def tolerance(dtype):
    """Comparison tolerance against numpy for results of one op (float32 loose, float64 tight)."""
    return dict(rtol=1e-5, atol=1e-6) if np.dtype(dtype) == np.float32 else dict(rtol=1e-12, atol=1e-12)
