"""keras.ops.einsum (einsum.py) against numpy's einsum, and EinsumDense (einsum_dense.py) against Keras 3.15:
seven layer cases (every equation form, bias axes, activations), a saved model trained as Keras trains it,
the kernel's fans, finite differences, the compiled step, and equations refused by name."""
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nnengine as nn
from keras_helpers import assert_files_round_trip, compiled_and_eager_runs, make_keras_files

keras = nn.keras
layers = keras.layers
DATA = Path(__file__).parent / "data"
RECORD = np.load(DATA / "keras3_einsum_dense.npz")
CASES = make_keras_files().EINSUM_DENSE_CASES

EQUATIONS = [("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("ijk->kji", [(2, 3, 4)]),
             ("ij->", [(3, 4)]), ("i,i->", [(5,), (5,)]), ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
             ("...ij,...jk->...ik", [(2, 3, 4, 5), (2, 3, 5, 2)]), ("ij,ij->ij", [(3, 4), (3, 4)]),
             ("ab,b->a", [(3, 4), (4,)]), ("abc,cd->abd", [(2, 3, 4), (4, 5)]), ("ij,kl->ijkl", [(2, 3), (4, 2)]),
             ("abc,b->", [(2, 3, 4), (3,)]), ("ij,jk", [(3, 4), (4, 5)]), ("ba,ac->cb", [(3, 4), (4, 2)])]


@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("equation, shapes", EQUATIONS, ids=[e for e, _ in EQUATIONS])
def test_einsum_is_numpys_and_its_gradient_checks(equation, shapes, device):
    rng = np.random.default_rng(0)
    operands = [rng.standard_normal(shape) for shape in shapes]
    got = keras.ops.einsum(equation, *[nn.Tensor(x, device=device) for x in operands]).numpy()
    np.testing.assert_allclose(got, np.einsum(equation, *operands), rtol=1e-12, atol=1e-12)
    assert nn.gradcheck(lambda *xs: keras.ops.einsum(equation, *xs), *operands)


@pytest.mark.parametrize("equation, shapes, message", [
    ("ii->i", [(3, 3)], r"repeats a letter"), ("ij,jk->ik", [(3, 4), (5, 6)], r"axis 'j' has size 4 .* and 5"),
    ("ij->ik", [(3, 4)], r"the output 'ik' must name each axis"), ("ij,jk,kl->il", [(2, 2)] * 3, r"one or two"),
    ("ijk->k", [(3, 4)], r"term 'ijk' .* names 3 axes"), ("i1->i", [(3,)], r"not a letter")])
def test_bad_equations_are_refused_by_name(equation, shapes, message):
    with pytest.raises(ValueError, match=message):
        keras.ops.einsum(equation, *[np.ones(shape) for shape in shapes])


@pytest.mark.parametrize("case, equation, output_shape, bias_axes, activation, shape", CASES,
                         ids=[c[0] for c in CASES])
def test_each_case_gives_keras_output_weights_and_config(case, equation, output_shape, bias_axes, activation,
                                                         shape):
    config = json.loads(str(RECORD[f"{case}_config"]))
    layer = layers.EinsumDense.from_config(config)
    layer.build((None, *shape[1:]))
    weights = [RECORD[f"{case}_w{i}"] for i in range(2) if f"{case}_w{i}" in RECORD.files]
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in weights]
    layer.set_weights(weights)
    out = layer(RECORD[f"{case}_x"])
    np.testing.assert_allclose(out.numpy(), RECORD[f"{case}_out"], rtol=1e-5, atol=1e-5)
    assert layer.compute_output_shape((3, *shape[1:]))[1:] == RECORD[f"{case}_out"].shape[1:]
    def comparable(c):           # Keras 3.15's variance-scaling configs add input_axes/output_axes: None
        return {k: v["class_name"] if k.endswith("initializer") else v for k, v in c.items()
                if k not in ("name", "dtype")}
    assert comparable(layer.get_config()) == comparable(config)


def test_keras_model_loads_predicts_evaluates_and_trains_as_keras(tmp_path):
    model = keras.models.load_model(DATA / "keras3_einsum_dense.keras")
    np.testing.assert_allclose(model.predict(RECORD["x"], verbose=0), RECORD["predictions"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.evaluate(RECORD["x"], RECORD["y"], verbose=0), RECORD["evaluate"], rtol=1e-5)
    model.fit(RECORD["x"], RECORD["y"], epochs=1, batch_size=8, shuffle=False, verbose=0)
    for index, weight in enumerate(model.get_weights()):
        np.testing.assert_allclose(weight, RECORD[f"trained_{index}"], rtol=5e-5, atol=5e-6)
    assert_files_round_trip(model, RECORD["x"], tmp_path, (16, 6, 5))


def test_the_kernel_fans_are_its_input_and_output_letters():
    """Glorot over a (5, 2, 300) kernel of 'abc,cde->abde': fan_in 5 and fan_out 600, as Keras 3.15's input_axes
    and output_axes give (a (in, out) reading of the last two axes would give fan_in 10 and fan_out 300)."""
    nn.utils.set_random_seed(1)
    layer = layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 300))
    layer.build((None, 4, 5))
    limit = np.sqrt(6 / (5 + 600))
    kernel = layer.kernel.numpy()
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit


@settings(max_examples=10, deadline=None)
@given(heads=st.integers(1, 3), size=st.integers(1, 4), seed=st.integers(0, 2 ** 16))
def test_gradients_by_finite_differences(heads, size, seed):
    rng = np.random.default_rng(seed)
    layer = layers.EinsumDense("abc,cde->abde", output_shape=(None, heads, size), bias_axes="de", dtype="float64")
    layer.build((None, 3, 4))

    def output(x, kernel, bias):
        kept = layer.kernel, layer.bias
        layer.kernel, layer.bias = kernel, bias
        try:
            return layer(x)
        finally:
            layer.kernel, layer.bias = kept
    assert nn.gradcheck(output, rng.standard_normal((2, 3, 4)), rng.standard_normal((4, heads, size)),
                        rng.standard_normal((heads, size)))


def test_a_model_trains_compiled_bitwise_as_eagerly():
    files = make_keras_files()
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((16, 6, 5)).astype(np.float32), rng.integers(0, 3, 16)

    def make_model():
        nn.utils.set_random_seed(3)
        return files.einsum_dense_model(keras)
    assert compiled_and_eager_runs(make_model, x, y, batch_size=8)["fallback_reason"] is None


@pytest.mark.parametrize("make, shape, message", [
    (lambda: layers.EinsumDense("ab,bc", 4), None, r"equation must be of the form"),
    (lambda: layers.EinsumDense("ab,bc->ac", 4, bias_axes="x"), None, r"bias_axes must be letters of the output"),
    (lambda: layers.EinsumDense("ab,bcz->ac", 4), (None, 3), r"the kernel's axis 'z' is in neither"),
    (lambda: layers.EinsumDense("abc,cd->abd", (5, 4)), (None, 6, 3), r"the input's axis 'b' has size 6"),
    (lambda: layers.EinsumDense("ab,bc->ac", (4, 2)), (None, 3), r"output_shape \(4, 2\) does not fit"),
    (lambda: layers.EinsumDense("ab,bc->ac", 4, lora_rank=2), None, r"LoRA and quantization are not supported"),
])
def test_bad_layers_are_refused_by_name(make, shape, message):
    with pytest.raises(ValueError, match=message):
        layer = make()
        layer.build(shape)
