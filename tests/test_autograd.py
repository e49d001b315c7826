"""Autograd semantics: accumulation, retain_graph, no_grad, detach, freeing the graph, memory."""
import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import nnengine as nn
import nnengine.functional as F


def leaf(data, device=None):
    return nn.tensor(data, device=device, requires_grad=True)


def test_grad_accumulates_across_backward_calls_until_zero_grad(device):
    x = leaf([1.0, 2.0], device)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])
    x.zero_grad()
    assert x.grad is None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3, 3])


def test_gradients_from_several_paths_add_up(device):
    x = leaf([2.0], device)
    y = x * x + x * 5 + x  # dy/dx = 2x + 6
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [10.0])


def test_shared_gradient_arrays_are_not_aliased(device):
    a, b = leaf([1.0, 2.0], device), leaf([3.0, 4.0], device)
    (a + b).sum().backward()  # add hands the same gradient to both inputs
    a.grad.backend.index_add(a.grad._data, 0, a.grad.backend.full((), 10, a.grad.dtype))
    assert b.grad.numpy()[0] == 1.0


def test_retained_and_leaf_gradients_passed_through_are_not_aliased():
    x = leaf([1.0, 2.0])
    kept = x.reshape((2,)) * 1.0
    kept.retain_grad()
    view = kept.reshape((1, 2))                 # reshape hands on (a view of) the same gradient
    view.sum().backward()
    assert not np.shares_memory(kept.grad._data, x.grad._data)
    seed_leaf = leaf(3.0)
    seed_leaf.backward()                        # the implicit seed is a shared constant: copied into .grad
    seed_leaf.grad._data[...] = 7.0
    other = leaf(5.0)
    other.backward()
    assert other.grad.item() == 1.0


def test_a_gradient_made_for_one_leaf_is_kept_without_a_copy(monkeypatch):
    w, b = leaf(np.ones((3, 2))), leaf(np.zeros(2))
    x = nn.tensor(np.ones((4, 3)))
    copies = []
    backend = w.backend
    monkeypatch.setattr(backend, "copy", lambda array: copies.append(array.shape) or array.copy())
    F.linear(x, w, b, activation="relu").sum().backward()
    assert copies == []                         # dense_backward made both gradients for these leaves alone
    np.testing.assert_allclose(w.grad.numpy(), np.full((3, 2), 4.0))
    np.testing.assert_allclose(b.grad.numpy(), [4.0, 4.0])


def test_graph_is_freed_after_backward_and_second_backward_raises():
    x = leaf([1.0, 2.0])
    loss = (x.exp() * 2).sum()
    loss.backward()
    assert loss.grad_fn.freed
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        loss.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_no_grad_records_nothing_and_restores_the_mode():
    x = leaf([1.0])
    with nn.no_grad():
        assert not nn.is_grad_enabled()
        y = x * 2
        with nn.enable_grad():
            z = x * 2
    assert nn.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None


def test_no_grad_as_decorator():
    @nn.no_grad()
    def double(t):
        return t * 2

    assert not double(leaf([1.0])).requires_grad
    assert nn.is_grad_enabled()


def test_detach_cuts_the_graph_and_shares_values():
    x = leaf([1.0, 2.0])
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    (d * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])  # d counted as a constant


def test_requires_grad_propagates_only_from_inputs_that_need_it():
    x, c = leaf([1.0]), nn.tensor([2.0])
    assert (x * c).requires_grad
    assert not (c * c).requires_grad
    assert c.requires_grad_() is c and c.requires_grad


def test_only_float_tensors_require_grad():
    with pytest.raises(TypeError, match="int64"):
        nn.tensor(np.array([1, 2]), requires_grad=True)
    x = leaf([1.5])
    assert not x.astype("int64").requires_grad  # a cast to int ends the graph


def test_backward_needs_a_graph():
    with pytest.raises(RuntimeError, match="does not require grad"):
        nn.tensor([1.0]).sum().backward()


def test_backward_with_explicit_gradient(device):
    x = leaf([[1.0, 2.0], [3.0, 4.0]], device)
    y = x * x
    y.backward(np.array([[1.0, 0.0], [0.5, 2.0]]))
    np.testing.assert_allclose(x.grad.numpy(), [[2.0, 0.0], [3.0, 16.0]])


def test_non_leaf_gets_grad_only_with_retain_grad():
    x = leaf([1.0, 2.0])
    hidden = x * 3
    kept = x * 4
    kept.retain_grad()
    (hidden + kept).sum().backward()
    assert hidden.grad is None
    np.testing.assert_allclose(kept.grad.numpy(), [1.0, 1.0])


def test_broadcast_gradient_is_reduced_to_input_shape(device):
    w = leaf(np.ones((1, 3)), device)
    b = leaf([0.5], device)
    x = nn.tensor(np.arange(12.0).reshape(2, 2, 3), device=device)
    (x * w + b).sum().backward()
    assert w.grad.shape == (1, 3) and b.grad.shape == (1,)
    np.testing.assert_allclose(w.grad.numpy(), x.numpy().sum(axis=(0, 1), keepdims=True)[0])
    np.testing.assert_allclose(b.grad.numpy(), [12.0])


def test_deep_chain_does_not_hit_the_recursion_limit():
    x = leaf([1.0])
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 5000], rtol=1e-3)


def test_intermediate_tensors_are_collected_after_backward():
    x = leaf(np.ones((3, 3)))
    hidden = (x * 2).tanh()
    ref = weakref.ref(hidden)
    loss = (hidden * hidden).sum()
    del hidden
    assert ref() is not None  # the graph keeps it alive ...
    loss.backward()
    gc.collect()
    assert ref() is None  # ... until backward frees the graph, even though loss lives on


def _train_step(x, y, w, b, m, v, step):
    loss = F.softmax_cross_entropy(F.linear(x, w, b), y)
    loss.backward()
    for param, mom, vel in ((w, m[0], v[0]), (b, m[1], v[1])):
        F.adam_update(param, param.grad, mom, vel, step)
        param.zero_grad()
    return loss.item()


def test_memory_does_not_grow_over_10000_training_steps():
    rng = np.random.default_rng(0)
    x = nn.tensor(rng.standard_normal((8, 4)), dtype="float32")
    y = nn.tensor(rng.integers(0, 3, 8))
    w, b = leaf((rng.standard_normal((4, 3)) * 0.1).astype(np.float32)), leaf(np.zeros(3, np.float32))
    m = [nn.zeros(w.shape), nn.zeros(b.shape)]
    v = [nn.zeros(w.shape), nn.zeros(b.shape)]
    for step in range(1, 1001):  # warm up: numpy fills small internal caches (~30 KB) at first
        _train_step(x, y, w, b, m, v, step)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for step in range(1001, 11001):
        _train_step(x, y, w, b, m, v, step)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    # One step's graph holds about 2 KB; keeping 10,000 of them would be megabytes.
    assert after - before < 64 * 1024, f"memory grew by {after - before} bytes over 10,000 steps"
