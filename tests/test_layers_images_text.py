"""Conv1D/2D, pooling, normalization, Embedding and Reshape: derivatives by finite differences in
float64, output shapes over property-drawn geometries, every backend against the numpy one, bad
input, configs, summaries and files. (Keras parity itself: test_layers_keras_parity.py.)"""
import numpy as np
import pytest

import nnengine as nn
from nnengine.conv_layers import output_length, window_positions
from nnengine.gradcheck import gradcheck

pytest.importorskip("hypothesis")        # property tests: skipped where hypothesis is missing
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

L = nn.layers


def float64_layer(layer, input_shape):
    layer.dtype = "float64"
    layer.build_once((None, *input_shape))
    for weight in layer.weights:
        weight.assign_(np.random.default_rng(1).standard_normal(weight.shape))
    return layer


LAYERS = {
    "conv2d_same_strided": (lambda: L.Conv2D(3, (3, 2), strides=(2, 1), padding="same", activation="tanh"), (5, 4, 2)),
    "conv2d_dilated": (lambda: L.Conv2D(2, 2, dilation_rate=2, activation="sigmoid"), (5, 5, 2)),
    "conv2d_1x1_no_bias": (lambda: L.Conv2D(2, 1, use_bias=False), (3, 3, 3)),
    "conv1d": (lambda: L.Conv1D(2, 3, padding="same", activation="relu"), (6, 2)),
    "conv1d_causal_strided": (lambda: L.Conv1D(2, 3, strides=2, padding="causal", activation="tanh"), (7, 2)),
    "maxpool_same": (lambda: L.MaxPooling2D((2, 3), strides=(1, 2), padding="same"), (4, 5, 2)),
    "avgpool_same": (lambda: L.AveragePooling2D(3, strides=2, padding="same"), (5, 4, 2)),
    "avgpool1d": (lambda: L.AveragePooling1D(2), (5, 3)),
    "global_avg": (lambda: L.GlobalAveragePooling2D(), (3, 2, 2)),
    "global_max1d": (lambda: L.GlobalMaxPooling1D(), (4, 3)),
    "batchnorm": (lambda: L.BatchNormalization(), (3, 3, 2)),
    "layernorm": (lambda: L.LayerNormalization(axis=[1, 2]), (3, 4)),
    "layernorm_last_no_center": (lambda: L.LayerNormalization(center=False), (3, 4)),
    "layernorm_middle_axis": (lambda: L.LayerNormalization(axis=1), (3, 2)),
    "batchnorm_channels_first_no_scale": (lambda: L.BatchNormalization(axis=1, scale=False), (2, 3, 2)),
    "maxpool_overlapping": (lambda: L.MaxPooling2D(3, strides=1), (4, 4, 2)),
    "maxpool1d_same": (lambda: L.MaxPooling1D(2, padding="same"), (5, 2)),
    "reshape": (lambda: L.Reshape((-1, 2)), (3, 4)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("training", [True, False])
def test_layer_derivatives_match_finite_differences(name, training):
    make, shape = LAYERS[name]
    layer = float64_layer(make(), shape)
    x = nn.tensor(np.random.default_rng(2).standard_normal((3, *shape)), dtype="float64", requires_grad=True)
    if "maxpool" in name or "global_max" in name:      # no ties within eps: max is differentiable there
        x = nn.tensor(np.random.default_rng(2).permutation(x.size).reshape(x.shape) * 0.1, dtype="float64",
                      requires_grad=True)
    if "batchnorm" in name and training:
        moving = [w.numpy() for w in layer.non_trainable_weights]
        gradcheck(lambda x_, *weights: layer(x_, training=True), x, *layer.trainable_weights)
        assert not np.allclose(moving[0], layer.non_trainable_weights[0].numpy())      # the moving mean moved
        return
    gradcheck(lambda x_, *weights: layer(x_, training=training), x, *layer.trainable_weights)


@pytest.mark.parametrize("device", ["numpy", "cpu"])
def test_max_pooling_gives_a_tied_maximum_gradient_to_its_first_element_as_keras(device):
    # windows of 2x2 over a 4x4 input where every window holds its maximum twice
    x = np.array([[1, 3, 0, 0], [3, 2, 0, -1], [5, 5, 7, 1], [5, 1, 2, 7]], dtype=np.float32).reshape(1, 4, 4, 1)
    xt = nn.tensor(x, device=device, requires_grad=True)
    L.MaxPooling2D(2)(xt).sum().backward()
    expected = np.array([[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(xt.grad.numpy().reshape(4, 4), expected)


def test_embedding_gradient_adds_into_the_rows_used():
    layer = float64_layer(L.Embedding(7, 3), (4,))
    indices = np.array([[1, 1, 6, 0], [6, 2, 2, 2]])
    out = layer(nn.tensor(indices, dtype="int64"))
    cotangent = np.random.default_rng(3).standard_normal(out.shape)
    (out * nn.tensor(cotangent, dtype="float64")).sum().backward()
    expected = np.zeros((7, 3))
    np.add.at(expected, indices, cotangent)
    np.testing.assert_allclose(layer.embeddings.grad.numpy(), expected, rtol=1e-12)
    gradcheck(lambda w: layer(nn.tensor(indices, dtype="int64")), layer.embeddings)


geometry = st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 4), st.integers(1, 4),
                     st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.sampled_from(["valid", "same"]))


@settings(deadline=None)
@given(geometry)
def test_windows_follow_keras_output_sizes_and_read_only_real_positions(g):
    height, width, kh, kw, sh, sw, dilation, padding = g
    if dilation > 1 and max(sh, sw) > 1:
        return                                           # Keras refuses that combination
    oh, ow = (output_length(s, k, st_, dilation, padding) for s, k, st_ in ((height, kh, sh), (width, kw, sw)))
    if oh < 1 or ow < 1:
        with pytest.raises(ValueError, match="output would be empty"):
            L.Conv2D(1, (kh, kw), strides=(sh, sw), padding=padding, dilation_rate=dilation)(np.zeros((1, height, width, 1)))
        return
    got_h, got_w, positions, padded = window_positions(height, width, (kh, kw), (sh, sw), (dilation, dilation), padding)
    assert (got_h, got_w) == (oh, ow) and positions.shape == (oh * ow * kh * kw,)
    assert positions.min() >= 0 and positions.max() <= height * width
    assert padded == (positions == height * width).any()
    if padding == "same":
        assert (oh, ow) == (-(-height // sh), -(-width // sw))
    layer = L.Conv2D(2, (kh, kw), strides=(sh, sw), padding=padding, dilation_rate=dilation)
    x = np.random.default_rng(0).standard_normal((2, height, width, 3)).astype(np.float32)
    assert layer(x).shape == layer.compute_output_shape((2, height, width, 3)) == (2, oh, ow, 2)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_backend_computes_the_layer_as_the_numpy_one(name, device):
    make, shape = LAYERS[name]
    nn.utils.set_random_seed(5)
    layer = make()
    x = np.random.default_rng(4).standard_normal((3, *shape)).astype(np.float32)
    expected = layer(nn.tensor(x), training=True).numpy()
    layer.to(device)
    nn.utils.set_random_seed(5)
    again = make()
    again.build_once((None, *shape))
    again.set_weights([w for w in make_weights(layer)])
    again.to(device)
    got = again(nn.tensor(x, device=device), training=True).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def make_weights(layer):
    """The layer's initial weights as they were before its training call (moving statistics reset)."""
    weights = layer.get_weights()
    if isinstance(layer, L.BatchNormalization):
        weights[-2], weights[-1] = np.zeros_like(weights[-2]), np.ones_like(weights[-1])
    return weights


# -- bad input: clear errors naming the layer ----------------------------------------------------------
def test_bad_inputs_are_clear_errors():
    conv = L.Conv2D(2, 3)
    with pytest.raises(ValueError, match=r"expected ndim=4 .*found ndim=3"):
        conv(np.zeros((2, 5, 5)))
    conv(np.zeros((1, 5, 5, 3)))
    with pytest.raises(ValueError, match=r"expected axis -1 of input shape to have value 3"):
        conv(np.zeros((1, 5, 5, 4)))
    with pytest.raises(ValueError, match=r"spans 3 .*has 2 there; with padding='valid' the output would be empty"):
        L.Conv2D(1, 3)(np.zeros((1, 2, 8, 1)))
    with pytest.raises(ValueError, match="padding must be one of 'valid', 'same', got 'causal'"):
        L.Conv2D(1, 2, padding="causal")           # Keras takes 'causal' for Conv1D only
    with pytest.raises(ValueError, match="padding must be one of 'valid', 'same', 'causal', got 'full'"):
        L.Conv1D(1, 2, padding="full")
    with pytest.raises(ValueError, match="strides > 1 together with dilation_rate > 1"):
        L.Conv2D(1, 2, strides=2, dilation_rate=2)
    with pytest.raises(TypeError, match="kernel_size must be an int or a tuple of 2 ints"):
        L.Conv2D(1, (2, 2, 2))
    with pytest.raises(ValueError, match="filters"):
        L.Conv2D(0, 2)
    embedding = L.Embedding(5, 2)
    with pytest.raises(ValueError, match=r"indices must be in \[0, 5\), got values in \[0, 5\]"):
        embedding(np.array([[0, 5]]))
    with pytest.raises(ValueError, match="non-integer values such as \\[1.5\\]"):
        embedding(np.array([[1.5, 2.0]]))
    with pytest.raises(ValueError, match=r"cannot be reshaped to \(4, -1\)"):
        L.Reshape((4, -1))(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="one -1"):
        L.Reshape((-1, -1))
    with pytest.raises(ValueError, match="batch axis"):
        L.BatchNormalization(axis=0)(np.zeros((2, 3)))


def test_batchnorm_on_one_sample_in_training_gives_beta_as_keras():
    layer = L.BatchNormalization(beta_initializer="ones")
    out = layer(np.array([[3.0, -2.0]], np.float32), training=True)
    np.testing.assert_allclose(out.numpy(), [[1.0, 1.0]])


def test_batchnorm_statistics_are_non_trainable_and_left_alone_by_the_optimizer():
    model = nn.Sequential([L.Dense(4, input_shape=(3,)), L.BatchNormalization(), L.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    bn = model.layers[1]
    assert bn.weight_names == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert len(bn.trainable_weights) == 2 and len(bn.non_trainable_weights) == 2
    x = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)
    model.fit(x, np.arange(16) % 2, epochs=2, batch_size=8, verbose=0)
    assert not any(id(w) in {id(t) for t in model.trainable_weights} for w in bn.non_trainable_weights)
    assert not np.allclose(bn.moving_mean.numpy(), 0)             # updated by the batches, not by Adam
    predict_before = model.predict(x, verbose=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), predict_before)     # inference changes nothing


# -- configs, summaries and files ------------------------------------------------------------------
def test_every_new_layer_round_trips_through_config_summary_and_h5(tmp_path, capsys):
    model = nn.Sequential([
        L.Input((12,)), L.Reshape((2, 2, 3)),
        L.Conv2D(4, 2, padding="same", activation="relu"), L.BatchNormalization(momentum=0.9),
        L.MaxPooling2D(2, padding="same"), L.Reshape((-1, 4)), L.Conv1D(3, 1), L.LayerNormalization(),
        L.AveragePooling1D(1), L.GlobalMaxPooling1D(), L.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((4, 12)).astype(np.float32)
    model.fit(x, np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    model.summary()
    text = capsys.readouterr().out
    for name in ("Conv2D", "BatchNormalization", "MaxPooling2D", "Conv1D", "LayerNormalization", "(None, 1, 1, 4)"):
        assert name in text
    assert "Non-trainable params: 8" in text
    model.save(tmp_path / "m.h5")
    again = nn.load_model(tmp_path / "m.h5")
    assert again.get_config() == model.get_config()
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    for layer in model.layers:
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == {**layer.get_config(), "name": clone.name} or clone.name == layer.name


def test_a_text_model_with_embedding_trains_and_saves(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 20, (64, 6))
    y = (x < 10).sum(axis=1) > 3                               # learnable: many small indices
    model = nn.Sequential([L.Input((6,), dtype="int32"), L.Embedding(20, 8), L.GlobalAveragePooling1D(),
                           L.Dense(2, activation="softmax")])
    model.compile(optimizer=nn.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y.astype(int), epochs=30, batch_size=16, verbose=0)
    assert history.history["accuracy"][-1] > 0.9
    model.save(tmp_path / "text.h5")
    np.testing.assert_allclose(nn.load_model(tmp_path / "text.h5").predict(x, verbose=0), model.predict(x, verbose=0))


def test_the_window_ops_refuse_tables_a_kernel_would_read_outside_of():
    from nnengine import layer_functional as LF
    x = nn.tensor(np.random.default_rng(0).random((2, 9, 3)).astype(np.float32))

    def table(values):
        return nn.tensor(np.array(values), dtype="int64")
    with pytest.raises(ValueError, match=r"positions must lie in \[0, 9\].*from 0 to 10"):
        LF.max_pool(x, table([0, 1, 9, 10]), 2)
    with pytest.raises(ValueError, match=r"from -1 to 2"):
        LF.average_pool(x, table([-1, 0, 1, 2]), 2)
    with pytest.raises(ValueError, match="wholly in the padding"):
        LF.max_pool(x, table([9, 9, 0, 1]), 2)
    with pytest.raises(ValueError, match="whole windows of 2"):
        LF.max_pool(x, table([0, 1, 2]), 2)
    with pytest.raises(TypeError, match="1-D int64"):
        LF.gather_windows(x, nn.tensor(np.array([0.0, 1.0])))
    with pytest.raises(TypeError, match="fill must be a number, got str"):
        LF.gather_windows(x, table([0, 1]), "zero")
    with pytest.raises(ValueError, match="must be a float32 Tensor of shape"):
        LF.normalize(x.reshape(18, 3), *LF.moments(x.reshape(18, 3), 1), None, None, 1e-3, 0, True)
    out = LF.max_pool(x, table([0, 1, 2, 9]), 2)          # padding in a window with a real element is fine
    np.testing.assert_array_equal(out.numpy()[:, 1], x.numpy()[:, 2])


@settings(max_examples=25, deadline=None)
@given(g=st.data())
def test_the_fused_window_and_normalization_ops_match_finite_differences(g):
    # each op alone, float64, on drawn geometries: odd sizes, strides beyond the window, 'same' with
    # strides, 1-wide windows, batch 1 (the layers' gradchecks above go through the same ops)
    from nnengine import layer_functional as LF
    n, height, width, channels = (g.draw(st.integers(1, 3)), g.draw(st.integers(1, 6)), g.draw(st.integers(1, 5)),
                                  g.draw(st.integers(1, 3)))
    kernel = (g.draw(st.integers(1, height)), g.draw(st.integers(1, width)))
    strides = (g.draw(st.integers(1, 3)), g.draw(st.integers(1, 3)))
    padding = g.draw(st.sampled_from(["valid", "same"]))
    _, _, positions, _ = window_positions(height, width, kernel, strides, (1, 1), padding)
    window = kernel[0] * kernel[1]
    rng = np.random.default_rng(g.draw(st.integers(0, 2**31)))
    # distinct values, far apart compared with eps: max pooling is differentiable there
    x = nn.tensor(rng.permutation(n * height * width * channels).reshape(n, height * width, channels) * 0.1,
                  dtype="float64", requires_grad=True)
    table = nn.tensor(positions, dtype="int64")
    gradcheck(lambda x_: LF.gather_windows(x_, table, -1.0), x)
    gradcheck(lambda x_: LF.max_pool(x_, table, window), x)
    gradcheck(lambda x_: LF.average_pool(x_, table, window), x)
    rows = nn.tensor(rng.standard_normal((n * height, width * channels)) * 3 + 2, dtype="float64", requires_grad=True)
    gamma = nn.tensor(rng.standard_normal(width * channels), dtype="float64", requires_grad=True)
    beta = nn.tensor(rng.standard_normal(width * channels), dtype="float64", requires_grad=True)
    for axis in (0, 1):                      # a statistic over one value included: its gradient is 0
        gradcheck(lambda r, gm, bt: LF.normalize(r, *LF.moments(r, axis), gm, bt, 1e-3, axis, True), rows, gamma, beta)
    moving = [nn.tensor(rng.random(width * channels) + 0.5, dtype="float64") for _ in range(2)]
    gradcheck(lambda r, gm, bt: LF.normalize(r, moving[0] - 0.5, moving[1], gm, bt, 1e-3, 0, False), rows, gamma, beta)


def _text_model(seed=0):
    nn.utils.set_random_seed(seed)
    return nn.Sequential([L.Input((6,), dtype="int32"), L.Embedding(20, 8), L.LSTM(5),
                          L.Dense(2, activation="softmax")])


def test_a_model_that_starts_with_an_embedding_compiles_bitwise_as_eager():
    """The trainer checks the indices on the host before uploading them, so the step needs no read-back."""
    from keras_helpers import compiled_and_eager_runs
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 20, (45, 6)), rng.integers(0, 2, 45)
    report = compiled_and_eager_runs(_text_model, x, y)
    assert report["captured"]["train"] == 2 and report["fallback_reason"] is None


@pytest.mark.parametrize("make_x, message", [
    (lambda x: np.where(np.arange(6) == 2, 20, x), r"Embedding '.*': indices must be in \[0, 20\), got values in "
                                                   r"\[\d+, 20\]"),
    (lambda x: np.where(np.arange(6) == 2, -1, x), r"indices must be in \[0, 20\), got values in \[-1, \d+\]"),
    (lambda x: x + 0.5, "non-integer values"),
])
def test_bad_indices_are_refused_before_training_and_in_every_batch(make_x, message):
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 20, (40, 6)), rng.integers(0, 2, 40)
    model = _text_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=True)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    before = model.get_weights()
    bad = make_x(x) if message != "non-integer values" else make_x(x.astype(np.float64))
    if message == "non-integer values":
        model = nn.Sequential([L.Input((6,)), L.Embedding(20, 8), L.Flatten(), L.Dense(2, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=True)
        before = model.get_weights()
    with pytest.raises(ValueError, match=message):
        model.fit(bad, y, epochs=1, batch_size=8, verbose=0)
    for kept, now in zip(before, model.get_weights()):      # refused before the first step
        np.testing.assert_array_equal(kept, now)
    with pytest.raises(ValueError, match=message):
        model.predict(bad, verbose=0)

    def batches():
        yield x[:8], y[:8]
        yield bad[:8], y[:8]
    with pytest.raises(ValueError, match=message):
        model.fit(batches(), epochs=1, verbose=0)
