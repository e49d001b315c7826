"""Strategies and array makers shared by the property tests."""
import numpy as np
import pytest

pytest.importorskip("hypothesis")        # property tests: skipped where hypothesis is missing
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@st.composite
def broadcast_pairs(draw, min_dims=0):
    """Two shapes that broadcast together (either may be stretched or have fewer dims)."""
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=min_dims, max_dims=3, max_side=3))
    return shapes.input_shapes


def values(seed, shape, low=-2.0, high=2.0, dtype=np.float64):
    """Uniform values in [low, high)."""
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(dtype)


def away_from_zero(seed, shape, low=0.2, high=2.0, dtype=np.float64):
    """Values whose magnitude lies in [low, high), with random signs (no kinks for relu/abs)."""
    rng = np.random.default_rng(seed)
    magnitude = rng.uniform(low, high, size=shape)
    return (magnitude * rng.choice([-1.0, 1.0], size=shape)).astype(dtype)


def distinct(seed, shape, dtype=np.float64):
    """Values that are pairwise at least 0.05 apart (no ties for max/min)."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.05 - 1 + rng.uniform(0, 0.01, size)).reshape(shape).astype(dtype)


#: Softmax cross-entropy targets of every kind, as makers (rng, n, c) -> array (float64 or int64).
TARGET_KINDS = {
    "one-hot": lambda rng, n, c: np.eye(c)[rng.integers(0, c, n)],
    "soft": lambda rng, n, c: rng.dirichlet(np.ones(c), n),
    "unnormalised": lambda rng, n, c: rng.uniform(0, 3, (n, c)),
    "class-index": lambda rng, n, c: rng.integers(0, c, n),
}
