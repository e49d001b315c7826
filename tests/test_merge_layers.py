"""Keras's merge layers (nnengine/merge_layers.py): outputs against Keras 3.15's, gradients against finite
differences in float64, the same results on every backend, and clear errors for inputs they cannot merge."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnengine as nn

layers = nn.keras.layers
DATA = __import__("pathlib").Path(__file__).resolve().parent / "data"

#: the cases of make_keras_files.py's merge_layer_outputs, with the same layers
KERAS_CASES = {
    "add_broadcast": lambda: layers.Add(), "average3": lambda: layers.Average(), "subtract": lambda: layers.Subtract(),
    "maximum": lambda: layers.Maximum(), "minimum": lambda: layers.Minimum(), "multiply": lambda: layers.Multiply(),
    "concatenate_axis1": lambda: layers.Concatenate(axis=1), "dot_2d": lambda: layers.Dot(axes=1),
    "dot_2d_normalize": lambda: layers.Dot(1, normalize=True), "dot_3d": lambda: layers.Dot(axes=(2, 1)),
    "dot_3d_axes1": lambda: layers.Dot(axes=1), "dot_3d_2d": lambda: layers.Dot(axes=(2, 1))}


def _inputs(reference, case):
    return [reference[key] for key in sorted(k for k in reference.files if k.startswith(f"{case}_in"))]


@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_outputs_match_keras(case):
    reference = np.load(DATA / "keras3_merge_layers.npz")
    layer = KERAS_CASES[case]()
    out = layer(_inputs(reference, case)).numpy()
    expected = reference[f"{case}_out"]
    assert out.shape == expected.shape
    assert layer.compute_output_shape([(None, *x.shape[1:]) for x in _inputs(reference, case)])[1:] == out.shape[1:]
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_gradients_match_finite_differences(case):
    reference = np.load(DATA / "keras3_merge_layers.npz")
    inputs = [nn.Tensor(x.astype(np.float64), requires_grad=True) for x in _inputs(reference, case)]
    layer = KERAS_CASES[case]()
    layer.build([(None, *x.shape[1:]) for x in inputs])
    nn.gradcheck(lambda *xs: layer.merge(list(xs)), *inputs)


@settings(max_examples=15, deadline=None)
@given(rows=st.integers(1, 5), features=st.integers(1, 6), count=st.integers(2, 4),
       name=st.sampled_from(["Add", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]))
def test_every_backend_merges_as_the_numpy_reference(rows, features, count, name):
    rng = np.random.default_rng(rows * 100 + features * 10 + count)
    arrays = [rng.standard_normal((rows, features)).astype(np.float32) for _ in range(count)]
    results = []
    for device in ("numpy", "cpu"):
        tensors = [nn.Tensor(a, device=device, requires_grad=True) for a in arrays]
        out = getattr(layers, name)()(tensors)
        (out * out).sum().backward()
        results.append((out.numpy(), [t.grad.numpy() for t in tensors]))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6, atol=1e-6)
    for ours, reference in zip(results[1][1], results[0][1]):
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)
    expected = {"Add": sum(arrays), "Multiply": np.prod(arrays, axis=0), "Average": sum(arrays) / count,
                "Maximum": np.max(arrays, axis=0), "Minimum": np.min(arrays, axis=0),
                "Concatenate": np.concatenate(arrays, axis=-1)}[name]
    np.testing.assert_allclose(results[0][0], expected, rtol=1e-5, atol=1e-6)


def test_dot_normalize_of_a_zero_vector_is_finite():
    zero = nn.Tensor(np.zeros((2, 3)), requires_grad=True)
    other = nn.Tensor(np.ones((2, 3)), requires_grad=True)
    out = layers.Dot(axes=1, normalize=True)([zero, other])
    out.sum().backward()
    assert np.all(out.numpy() == 0) and np.all(np.isfinite(zero.grad.numpy()))


def test_functional_forms_and_configs():
    a, b = np.ones((2, 3), np.float32), np.full((2, 3), 2.0, np.float32)
    assert np.array_equal(layers.add([a, b]).numpy(), a + b)
    assert np.array_equal(layers.subtract([a, b]).numpy(), a - b)
    assert np.array_equal(layers.concatenate([a, b]).numpy(), np.concatenate([a, b], axis=-1))
    assert np.array_equal(layers.dot([a, b], axes=1).numpy(), np.full((2, 1), 6.0))
    assert layers.average([a, b]).numpy()[0, 0] == 1.5 and layers.maximum([a, b]).numpy()[0, 0] == 2
    assert layers.minimum([a, b]).numpy()[0, 0] == 1 and layers.multiply([a, b]).numpy()[0, 0] == 2
    for layer in (layers.Concatenate(axis=1, name="c"), layers.Dot(axes=(2, 1), normalize=True), layers.Add()):
        config = layer.get_config()
        assert type(layer).from_config(config).get_config() == config
    assert layers.Dot(axes=(1, 2)).get_config()["axes"] == [1, 2]
    assert layers.Concatenate(axis=1).get_config()["axis"] == 1


@pytest.mark.parametrize("make, shapes, message", [
    (layers.Subtract, [(2, 3)] * 3, "exactly 2 inputs"),
    (layers.Add, [(2, 3), (2, 4)], r"cannot be merged elementwise \(sizes must agree, or be 1\)"),
    (layers.Add, [(2, 3), (2, 3, 1)], "must have one rank"),
    (layers.Concatenate, [(2, 3, 4), (2, 5, 4)], "agree except on the concatenation axis"),
    (lambda: layers.Concatenate(axis=0), [(2, 3), (2, 3)], "axis 0 is not a sample axis"),
    (lambda: layers.Dot(axes=1), [(2, 3), (2, 4)], "sizes along axes"),
    (lambda: layers.Dot(axes=1), [(2, 3, 4, 5), (2, 3, 4, 5)], "rank 2 or 3"),
])
def test_inputs_that_cannot_be_merged_are_refused_with_the_reason(make, shapes, message):
    with pytest.raises(ValueError, match=message):
        make()([np.ones(shape, np.float32) for shape in shapes])
    with pytest.raises(ValueError, match=message):
        make()([nn.keras.Input(shape=shape[1:]) for shape in shapes])


def test_merge_layers_take_lists_and_other_layers_do_not():
    inputs = nn.keras.Input(shape=(3,))
    with pytest.raises(TypeError, match=r"must be called on a list of tensors, e.g. Add\(\)\(\[a, b\]\)"):
        layers.Add()(inputs)
    with pytest.raises(TypeError, match="must be called on a list of tensors, got ndarray"):
        layers.Add()(np.ones((2, 3)))
    with pytest.raises(TypeError, match="only merge layers such as Add or Concatenate take lists"):
        layers.Dense(2)([inputs, inputs])
    with pytest.raises(ValueError, match="axes must be an int or a pair"):
        layers.Dot(axes=(1, 1, 1))
