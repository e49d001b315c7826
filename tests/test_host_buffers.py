"""The CPU backend's pool of large host buffers: reuse only when nothing refers to a buffer, views
included; stale buffers given back; results unchanged."""
import numpy as np
import pytest

import nnengine as nn
from nnengine.backends import host_buffers


@pytest.fixture(autouse=True)
def empty_pool():
    host_buffers.release_free()
    yield
    host_buffers.release_free()


def test_a_buffer_is_reused_only_once_nothing_refers_to_it():
    shape = (host_buffers.MIN_POOLED_BYTES // 4 + 7,)
    first = host_buffers.empty(shape, np.float32)
    first[...] = 2.0
    address = first.__array_interface__["data"][0]
    view = first.reshape(-1)[5:]                     # a view keeps the buffer in use
    del first
    second = host_buffers.empty(shape, np.float32)
    assert second.__array_interface__["data"][0] != address
    second[...] = 1.0
    assert (view == 2.0).all()                       # the viewed buffer was never handed out twice
    del view
    third = host_buffers.empty((shape[0],), np.float32)
    assert third.__array_interface__["data"][0] == address
    assert third.shape == shape and third.dtype == np.float32 and third.flags.c_contiguous


def test_small_arrays_are_numpys_own_and_zeros_are_zero():
    small = host_buffers.empty((3, 4), np.float64)
    assert small.base is None and host_buffers.held_bytes() == 0
    big = host_buffers.empty((host_buffers.MIN_POOLED_BYTES,), np.uint8)
    big[...] = 7
    del big
    again = host_buffers.zeros((host_buffers.MIN_POOLED_BYTES,), np.uint8)
    assert not again.any()


def test_free_buffers_nobody_takes_go_back_and_release_empties_the_pool(monkeypatch):
    monkeypatch.setattr(host_buffers, "STALE_AFTER_REQUESTS", 8)
    size = host_buffers.MIN_POOLED_BYTES
    host_buffers.empty((size,), np.uint8)            # made and freed at once: stale from now on
    assert host_buffers.held_bytes() == size
    for _ in range(20):                              # another size, requested again and again
        keep = host_buffers.empty((2 * size,), np.uint8)
        del keep
    assert host_buffers.held_bytes() == 2 * size     # the first buffer went back
    host_buffers.release_free()
    assert host_buffers.held_bytes() == 0


def test_the_pool_never_changes_a_result():
    # the same CNN step twice from the same start, with the pool emptied before the second
    def losses():
        nn.utils.set_random_seed(0)
        model = nn.Sequential([nn.Input((12, 12, 4)), nn.layers.Conv2D(64, 3, activation="relu"),
                               nn.layers.MaxPooling2D(2), nn.layers.Flatten(), nn.layers.Dense(3)])
        model.compile(optimizer="adam", loss="mse")
        x = np.random.default_rng(1).standard_normal((256, 12, 12, 4)).astype(np.float32)
        y = np.random.default_rng(2).standard_normal((256, 3)).astype(np.float32)
        return [model.train_on_batch(x, y) for _ in range(4)]
    first = losses()
    assert host_buffers.held_bytes() > 0             # the patch matrix (256 * 100 * 36 floats) was pooled
    host_buffers.release_free()
    assert losses() == first
