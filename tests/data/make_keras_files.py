"""Write the .h5 and .keras files that tests/test_keras_files.py and test_keras_archive.py read, with real
Keras (not run by the tests).

    KERAS_BACKEND=torch python tests/data/make_keras_files.py keras3      # in a venv with keras 3 + torch
    KERAS_BACKEND=torch python tests/data/make_keras_files.py archives    # the same venv: the .keras files
    KERAS_BACKEND=torch python tests/data/make_keras_files.py recurrent   # the same venv: LSTM, GRU, SimpleRNN
    KERAS_BACKEND=torch python tests/data/make_keras_files.py bidirectional   # and the Bidirectional wrapper
    KERAS_BACKEND=torch python tests/data/make_keras_files.py time_distributed   # and TimeDistributed
    KERAS_BACKEND=torch python tests/data/make_keras_files.py functional_graph   # branches, merges, sharing,
                                                                                 # two inputs
    KERAS_BACKEND=torch python tests/data/make_keras_files.py subclassed   # a subclass of keras.Model
    KERAS_BACKEND=torch python tests/data/make_keras_files.py multi_output   # three outputs, a loss on each
    KERAS_BACKEND=torch python tests/data/make_keras_files.py loss_metrics   # metrics that are losses' means
    KERAS_BACKEND=torch python tests/data/make_keras_files.py nested   # models used as layers of models
    KERAS_BACKEND=torch python tests/data/make_keras_files.py masked   # padded sequences: Keras's masks
    KERAS_BACKEND=torch python tests/data/make_keras_files.py attention   # MultiHeadAttention, custom blocks
    KERAS_BACKEND=torch python tests/data/make_keras_files.py states   # return_state and initial_state
    KERAS_BACKEND=torch python tests/data/make_keras_files.py backup   # BackupAndRestore's directory
    KERAS_BACKEND=torch python tests/data/make_keras_files.py group_rms   # GroupNormalization, RMSNormalization
    KERAS_BACKEND=torch python tests/data/make_keras_files.py sequence_attention   # Attention, AdditiveAttention
    KERAS_BACKEND=torch python tests/data/make_keras_files.py confusion_metrics   # thresholds, top_k, IoU
    KERAS_BACKEND=torch python tests/data/make_keras_files.py overlap_losses   # Dice, Tversky
    KERAS_BACKEND=torch python tests/data/make_keras_files.py correlation_metrics   # Pearson, concordance, Sum
    KERAS_BACKEND=torch python tests/data/make_keras_files.py rnn_cells   # RNN(cell), stacked and custom cells
    KERAS_BACKEND=torch python tests/data/make_keras_files.py conv_groups   # grouped convolutions
    KERAS_BACKEND=torch python tests/data/make_keras_files.py einsum_dense   # EinsumDense
    python tests/data/make_keras_files.py tf2                             # in a venv with tensorflow 2.15

Each run saves a Sequential model of Dense layers with ``model.save(<name>.h5)``
after a short fit, plus ``<name>.npz`` holding an input batch and Keras's own
predictions for it, so that nnengine's loader is checked against Keras's output.
"""
import json
import sys

import numpy as np


def build_and_save(keras, name):
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 6)).astype("float32")
    y = rng.integers(0, 3, 64)
    model = keras.Sequential([
        keras.Input(shape=(6,)),
        keras.layers.Dense(8, activation="relu"),
        keras.layers.Dense(5, activation="tanh"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    model.save(f"{name}.h5")
    np.savez(f"{name}.npz", x=x[:8], y=model.predict(x[:8], verbose=0), labels=y[:8])


def train_save_and_record(model, x, y, name, suffixes, optimizer="adam"):
    """Compile ``model`` (sparse cross-entropy, accuracy), fit it 2 epochs, save it as ``<name><suffix>`` for each
    suffix (``.weights.h5`` with save_weights), then ``<name>.npz``: an input batch and Keras's predictions for
    it, and the data of one more epoch (unshuffled) with the weights Keras reached after it, which only a
    correctly restored optimizer state reaches too."""
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for suffix in suffixes:
        (model.save_weights if suffix == ".weights.h5" else model.save)(f"{name}{suffix}")
    predictions = model.predict(x[:8], verbose=0)
    model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    np.savez(f"{name}.npz", x=x[:8], y=predictions, x_fit=x, y_fit=y,
             **{f"after_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())})


def build_and_save_archive(keras, name, layers, optimizer, input_shape, labels=3, also_h5=False):
    """A model saved with ``model.save(<name>.keras)`` after a short fit, and ``<name>.npz``: an input batch and
    Keras's predictions for it, and the data of one more epoch (unshuffled) with the weights Keras reached after
    it, which only a correctly restored optimizer state reaches too. With ``also_h5`` the model is saved to
    ``<name>.h5`` too (after the .keras file: Keras 3.15 drops the optimizer from the compile config once it
    wrote an .h5)."""
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((48, *input_shape)).astype("float32")
    y = rng.integers(0, labels, 48)
    model = keras.Sequential([keras.Input(shape=input_shape), *layers])
    train_save_and_record(model, x, y, name, (".keras", ".h5") if also_h5 else (".keras",), optimizer)


def build_and_save_functional(keras):
    """A Functional chain saved in both formats (with its npz, as build_and_save_archive writes one), and a
    Functional model that branches, which nnengine refuses."""
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((48, 10, 2)).astype("float32"), rng.integers(0, 3, 48)
    inputs = keras.Input(shape=(10, 2))
    hidden = keras.layers.Conv1D(4, 3, activation="relu")(inputs)
    hidden = keras.layers.GlobalAveragePooling1D()(hidden)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    train_save_and_record(model, x, y, "keras3_functional", (".keras", ".h5"))
    with open("keras3_functional.json", "w") as file:                 # to_json of an uncompiled model
        inputs = keras.Input(shape=(4,))
        file.write(keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(3)(inputs))).to_json())
    inputs = keras.Input(shape=(4,))
    branches = keras.layers.Add()([keras.layers.Dense(2)(inputs), keras.layers.Dense(2)(inputs)])
    keras.Model(inputs, branches).save("keras3_functional_branches.keras")


def functional_graph(keras):
    """A functional model that branches, merges (every merge layer) and shares a layer, with a residual join."""
    layers = keras.layers
    inputs = keras.Input(shape=(12,), name="features")
    a = layers.Dense(16, activation="relu", name="a")(inputs)
    b = layers.Dense(16, activation="tanh", name="b")(inputs)
    shared = layers.Dense(16, activation="relu", name="shared")
    sa, sb = shared(a), shared(b)
    merged = [layers.BatchNormalization()(layers.Add()([sa, sb])), layers.Subtract()([a, b]),
              layers.Multiply()([a, b]), layers.Average()([a, b, sa]), layers.Maximum()([sa, sb]),
              layers.Minimum()([sa, sb]), layers.Dot(axes=1, normalize=True)([a, b])]
    joined = layers.Concatenate()(merged)
    residual = layers.Add(name="residual")([layers.Dense(16, name="projection")(joined), a])
    return keras.Model(inputs, layers.Dense(3, activation="softmax", name="classes")(residual), name="graph")


def merge_layer_outputs(keras):
    """Keras's outputs of its merge layers on random inputs: {case: (inputs, output)} as npz arrays."""
    layers, rng, arrays = keras.layers, np.random.default_rng(5), {}
    cases = {"add_broadcast": (layers.Add(), [(4, 1, 3), (4, 5, 3)]),
             "average3": (layers.Average(), [(4, 6)] * 3), "subtract": (layers.Subtract(), [(4, 6)] * 2),
             "maximum": (layers.Maximum(), [(4, 2, 3)] * 2), "minimum": (layers.Minimum(), [(4, 6)] * 2),
             "multiply": (layers.Multiply(), [(4, 6)] * 3), "concatenate_axis1": (layers.Concatenate(axis=1),
                                                                                  [(4, 2, 3), (4, 5, 3)]),
             "dot_2d": (layers.Dot(axes=1), [(4, 6)] * 2), "dot_2d_normalize": (layers.Dot(1, normalize=True),
                                                                                [(4, 6)] * 2),
             "dot_3d": (layers.Dot(axes=(2, 1)), [(4, 2, 3), (4, 3, 5)]),
             "dot_3d_axes1": (layers.Dot(axes=1), [(4, 3, 2), (4, 3, 5)]),
             "dot_3d_2d": (layers.Dot(axes=(2, 1)), [(4, 2, 3), (4, 3)])}
    for case, (layer, shapes) in cases.items():
        inputs = [rng.standard_normal(shape).astype("float32") for shape in shapes]
        for position, value in enumerate(inputs):
            arrays[f"{case}_in{position}"] = value
        arrays[f"{case}_out"] = keras.ops.convert_to_numpy(layer(inputs))
    return arrays


def build_and_save_functional_graph(keras):
    """``keras3_graph.*``: functional_graph() trained with Adam, saved as .keras, .h5 and .weights.h5, with the
    npz of build_and_save_archive; ``keras3_merge_layers.npz``: merge_layer_outputs()."""
    keras.utils.set_random_seed(4)
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((64, 12)).astype("float32"), rng.integers(0, 3, 64)
    train_save_and_record(functional_graph(keras), x, y, "keras3_graph", (".keras", ".h5", ".weights.h5"))
    np.savez("keras3_merge_layers.npz", **merge_layer_outputs(keras))
    build_and_save_two_inputs(keras)


def build_and_save_two_inputs(keras):
    """``keras3_two_inputs.*``: a model of two inputs (numbers, and int tokens through an Embedding) trained with
    Adam, saved as .keras and .h5, with its npz (inputs, predictions, one more epoch fed as a dict, weights)."""
    keras.utils.set_random_seed(6)
    rng = np.random.default_rng(6)
    numbers, tokens = keras.Input(shape=(5,), name="numbers"), keras.Input(shape=(7,), dtype="int32", name="tokens")
    embedded = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(20, 4)(tokens))
    joined = keras.layers.Concatenate()([keras.layers.Dense(6, activation="relu")(numbers), embedded])
    model = keras.Model([numbers, tokens], keras.layers.Dense(3, activation="softmax")(joined))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x_numbers, x_tokens = rng.standard_normal((40, 5)).astype("float32"), rng.integers(0, 20, (40, 7))
    y = rng.integers(0, 3, 40)
    model.fit([x_numbers, x_tokens], y, epochs=2, batch_size=8, verbose=0)
    model.save("keras3_two_inputs.keras")
    model.save("keras3_two_inputs.h5")
    predictions = model.predict([x_numbers, x_tokens], verbose=0)
    model.fit({"numbers": x_numbers, "tokens": x_tokens}, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    np.savez("keras3_two_inputs.npz", numbers=x_numbers, tokens=x_tokens, y=y, predictions=predictions,
             **{f"after_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())})


def tower_class(keras):
    """A subclassed model (the test defines the same class over nnengine's keras): a nested Sequential, a
    BatchNormalization, a private attribute, a dict of layers and a layer made in call."""
    class Tower(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.encoder = keras.Sequential([keras.layers.Dense(6, activation="relu"), keras.layers.Dense(6)])
            self.norm = keras.layers.BatchNormalization()
            self._mix = keras.layers.Dense(6, activation="tanh")
            self.heads = {"a": keras.layers.Dense(4), "b": keras.layers.Dense(4, activation="relu")}
            self.classes = keras.layers.Dense(3, activation="softmax")

        def call(self, x, training=False):
            h = self._mix(self.norm(self.encoder(x), training=training))
            return self.classes(keras.layers.Concatenate()([self.heads["a"](h), self.heads["b"](h)]))
    return Tower


def build_and_save_subclassed(keras):
    """``keras3_subclassed.*``: tower_class() trained with Adam, saved as .keras and .weights.h5, with the npz of
    build_and_save_archive."""
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((48, 5)).astype("float32"), rng.integers(0, 3, 48)
    train_save_and_record(tower_class(keras)(), x, y, "keras3_subclassed", (".keras", ".weights.h5"))


def build_and_save_archives(keras):
    build_and_save_functional(keras)
    layers = keras.layers
    build_and_save_archive(keras, "keras3_cnn_rmsprop", [
        layers.Conv2D(4, 3, padding="same", activation="relu"), layers.BatchNormalization(), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(3, activation="softmax")],
        keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True), (8, 8, 1))
    build_and_save_archive(keras, "keras3_mlp_amsgrad", [
        layers.Dense(8, activation="relu"), layers.Dense(8, activation="tanh", use_bias=False),
        layers.Dense(3, activation="softmax")], keras.optimizers.Adam(0.01, amsgrad=True), (6,))


def build_and_save_adamax(keras):
    """``keras3_mlp_adamax.keras`` and ``.npz``: an MLP trained by Keras's Adamax, to be resumed
    (build_and_save_archive)."""
    layers = keras.layers
    build_and_save_archive(keras, "keras3_mlp_adamax", [
        layers.Dense(8, activation="relu"), layers.Dense(3, activation="softmax")],
        keras.optimizers.Adamax(0.02, beta_2=0.99), (6,))


def build_and_save_nadam(keras):
    """``keras3_mlp_nadam.keras``, ``.h5`` and ``.npz``: an MLP trained by Keras's Nadam, whose files hold its
    u_product after the slots, to be resumed (build_and_save_archive)."""
    layers = keras.layers
    build_and_save_archive(keras, "keras3_mlp_nadam", [
        layers.Dense(8, activation="relu"), layers.Dense(3, activation="softmax")],
        keras.optimizers.Nadam(0.02), (6,), also_h5=True)


def build_and_save_recurrent(keras):
    """The three recurrent layers, one going backwards, in both formats."""
    layers = keras.layers
    build_and_save_archive(keras, "keras3_rnn_adam", [
        layers.LSTM(6, return_sequences=True), layers.GRU(5, return_sequences=True, go_backwards=True),
        layers.SimpleRNN(4), layers.Dense(3, activation="softmax")], keras.optimizers.Adam(0.01), (7, 3),
        also_h5=True)


def build_and_save_bidirectional(keras):
    """Bidirectional wrappers, each merge mode but mul, in both formats."""
    layers = keras.layers
    build_and_save_archive(keras, "keras3_bidirectional", [
        layers.Bidirectional(layers.LSTM(5, return_sequences=True)),
        layers.Bidirectional(layers.GRU(4, return_sequences=True), merge_mode="ave"),
        layers.Bidirectional(layers.SimpleRNN(3), merge_mode="sum"), layers.Dense(3, activation="softmax")],
        keras.optimizers.Adam(0.01), (7, 3), also_h5=True)


def build_and_save_time_distributed(keras):
    """TimeDistributed over a small convolution, a Flatten and a Dense, into an LSTM, in both formats."""
    layers = keras.layers
    build_and_save_archive(keras, "keras3_time_distributed", [
        layers.TimeDistributed(layers.Conv2D(2, 3, activation="relu")), layers.TimeDistributed(layers.Flatten()),
        layers.TimeDistributed(layers.Dense(4, activation="tanh")), layers.LSTM(3),
        layers.Dense(3, activation="softmax")], keras.optimizers.Adam(0.01), (4, 5, 5, 1), also_h5=True)


#: the modes run with Keras 3 (KERAS_BACKEND=torch), each a function of the keras module
def multi_output(keras):
    """A functional model with three outputs: classes (softmax), a value (linear) and a gate (sigmoid)."""
    layers = keras.layers
    inputs = keras.Input(shape=(6,), name="features")
    hidden = layers.Dense(12, activation="relu", name="hidden")(inputs)
    classes = layers.Dense(3, activation="softmax", name="classes")(hidden)
    value = layers.Dense(1, name="value")(layers.Concatenate(name="joined")([hidden, classes]))
    gate = layers.Dense(1, activation="sigmoid", name="gate")(hidden)
    return keras.Model(inputs, [classes, value, gate], name="three_heads")


MULTI_OUTPUT_COMPILE = dict(loss={"classes": "categorical_crossentropy", "value": "mse", "gate": "binary_crossentropy"},
                            loss_weights={"classes": 1.0, "value": 0.5, "gate": 2.0},
                            metrics={"classes": ["accuracy"], "value": ["mae"], "gate": ["accuracy", "mse"]})


def multi_output_data(seed=7, count=40):
    """multi_output()'s data: x, and the targets of each output as a list."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((count, 6)).astype("float32")
    classes = np.eye(3, dtype="float32")[rng.integers(0, 3, count)]
    value = rng.standard_normal((count, 1)).astype("float32")
    gate = rng.integers(0, 2, (count, 1)).astype("float32")
    return x, [classes, value, gate]


def build_and_save_multi_output(keras):
    """``keras3_multi_output.*``: multi_output() compiled with MULTI_OUTPUT_COMPILE and Adam; the npz holds its
    first weights, the History of 2 unshuffled epochs with a validation split, evaluate's list, the predictions;
    then the model is saved as .keras and .h5, trained one more epoch, and its weights recorded."""
    keras.utils.set_random_seed(7)
    x, ys = multi_output_data()
    model = multi_output(keras)
    model.compile(optimizer="adam", **MULTI_OUTPUT_COMPILE)
    first = {f"first_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    history = model.fit(x, ys, epochs=2, batch_size=8, shuffle=False, validation_split=0.25, verbose=0).history
    evaluated = model.evaluate(x, ys, batch_size=16, verbose=0)
    predictions = model.predict(x[:8], verbose=0)
    model.save("keras3_multi_output.keras")
    model.save("keras3_multi_output.h5")
    model.fit(x, ys, epochs=1, batch_size=8, shuffle=False, verbose=0)
    np.savez("keras3_multi_output.npz", **first, evaluated=np.array(evaluated),
             history_keys=np.array(sorted(history)), history=np.array([history[k] for k in sorted(history)]),
             **{f"predicted_{i}": p for i, p in enumerate(predictions)},
             **{f"after_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())})


def nested_parts(keras):
    """The models nested_models() uses as layers: a functional ``base`` (built on its own Input) and a Sequential
    ``block`` without an Input (built inside the model that calls it)."""
    layers = keras.layers
    inputs = keras.Input((6,), name="base_input")
    hidden = layers.Dense(8, activation="tanh", name="base_hidden")(layers.Dense(8, activation="relu")(inputs))
    base = keras.Model(inputs, hidden, name="base")
    block = keras.Sequential([layers.Dense(5, activation="relu"), layers.Dense(5, activation="relu")], name="block")
    return base, block


def nested_models(keras):
    """Two models of nested models: a Sequential [base, block, Dense softmax], and a functional model calling a
    frozen ``base`` (transfer learning) and a ``block`` of its own."""
    base, block = nested_parts(keras)
    stacked = keras.Sequential([keras.Input((6,)), base, block, keras.layers.Dense(3, activation="softmax")],
                               name="stacked")
    frozen_base, frozen_block = nested_parts(keras)
    frozen_base.trainable = False
    inputs = keras.Input((6,), name="features")
    outputs = keras.layers.Dense(3, activation="softmax", name="classes")(frozen_block(frozen_base(inputs)))
    return stacked, keras.Model(inputs, outputs, name="transfer")


def build_and_save_nested(keras):
    """``keras3_nested_<stacked|transfer>.*``: each of nested_models() trained with Adam and saved as .keras, .h5
    and .weights.h5, with train_save_and_record's npz."""
    keras.utils.set_random_seed(9)
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((48, 6)).astype("float32"), rng.integers(0, 3, 48)
    for model in nested_models(keras):
        train_save_and_record(model, x, y, f"keras3_nested_{model.name}", (".keras", ".h5", ".weights.h5"))


def padded_sequences(rng, count=24, steps=7, vocabulary=12):
    """Integer sequences (count, steps) in [1, vocabulary), padded with zeros at the front, at the back, in the
    middle and throughout (one sequence is all padding), and the same as float features (count, steps, 3)."""
    tokens = rng.integers(1, vocabulary, (count, steps))
    lengths = rng.integers(1, steps + 1, count)
    for row, length in enumerate(lengths):
        if row % 2:
            tokens[row, length:] = 0                # padded after
        else:
            tokens[row, :steps - length] = 0        # padded before (pad_sequences' default)
    tokens[3, 2:4] = 0
    tokens[5] = 0
    features = rng.standard_normal((count, steps, 3)).astype("float32") * (tokens[..., None] != 0)
    return tokens, features


def masked_models(keras):
    """{name: (model, uses tokens, targets per step)}: models whose padded steps Keras's masks skip."""
    layers = keras.layers
    tokens = keras.Input((7,))
    classifier = keras.Sequential([tokens, layers.Embedding(12, 4, mask_zero=True), layers.LSTM(5),
                                   layers.Dense(3, activation="softmax")], name="classifier")
    tagger = keras.Sequential([keras.Input((7,)), layers.Embedding(12, 4, mask_zero=True),
                               layers.Bidirectional(layers.GRU(4, return_sequences=True)),
                               layers.Dense(3, activation="softmax")], name="tagger")
    backwards = keras.Sequential([keras.Input((7, 3)), layers.Masking(0.0), layers.SimpleRNN(5, go_backwards=True),
                                  layers.Dense(3, activation="softmax")], name="backwards")
    inputs = keras.Input((7,))
    embedded = layers.Embedding(12, 4, mask_zero=True)(inputs)
    states = layers.GRU(4, return_sequences=True, reset_after=False)(embedded)
    joined = layers.Concatenate()([states, layers.Dense(4, activation="tanh")(embedded)])
    pooled = layers.GlobalAveragePooling1D()(joined)
    pooling = keras.Model(inputs, layers.Dense(3, activation="softmax")(pooled), name="pooling")
    return {"classifier": (classifier, True, False), "tagger": (tagger, True, True),
            "backwards": (backwards, False, False), "pooling": (pooling, True, False)}


def record_one_epoch(keras, model, name, x, y, record, loss="sparse_categorical_crossentropy", metric="accuracy",
                     optimizer=None):
    """Into ``record``: the targets ``y``, the model's first weights, predictions, evaluate's [loss, metric], the
    [loss, metric] of one unshuffled epoch of Adam(0.01) (or ``optimizer``, a Keras config dict) in batches of 8,
    and the weights after it. ``loss``: a name or a Keras config dict {"class_name", "config"}; a loss, metric or
    optimizer other than the defaults is recorded in ``{name}_compile``."""
    model.compile(optimizer=keras.optimizers.Adam(0.01) if optimizer is None else
                  keras.optimizers.get(json.loads(json.dumps(optimizer))),        # (Keras's get edits its dict)
                  loss=keras.losses.get(loss), metrics=[metric])
    record.update({f"{name}_y": y, f"{name}_predictions": model.predict(x, verbose=0),
                   f"{name}_evaluate": np.asarray(model.evaluate(x, y, verbose=0)),
                   **{f"{name}_before_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}})
    if (loss, metric, optimizer) != ("sparse_categorical_crossentropy", "accuracy", None):
        record[f"{name}_compile"] = np.asarray(json.dumps({"loss": loss, "metric": metric, "optimizer": optimizer}))
    history = model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0).history
    record[f"{name}_history"] = np.asarray([history["loss"][0], history[metric][0]])
    record.update({f"{name}_after_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())})


def build_and_save_masked(keras):
    """``keras3_masked.npz``: for each of masked_models(), its first weights, its predictions, evaluate's [loss,
    accuracy] and the weights after one unshuffled epoch of Adam (batch 8); the classifier also as .keras."""
    keras.utils.set_random_seed(11)
    rng = np.random.default_rng(11)
    tokens, features = padded_sequences(rng)
    tokens[5, 0] = 1                # GlobalAveragePooling1D over no kept step is 0 / 0 in Keras: nan
    record = {"tokens": tokens, "features": features}
    for name, (model, uses_tokens, per_step) in masked_models(keras).items():
        x = tokens if uses_tokens else features
        record_one_epoch(keras, model, name, x, rng.integers(0, 3, (len(x), 7) if per_step else len(x)), record)
        if name == "classifier":
            model.save("keras3_masked_classifier.keras")
    np.savez("keras3_masked.npz", **record)


def masked_functional_models(keras):
    """{name: (model, its input in the npz)}: functional models whose masks Keras records as ops: a padded-text
    model (Embedding, Bidirectional LSTM, GRU, GlobalAveragePooling1D), Masking before an LSTM, and an Embedding's
    mask merged through a Concatenate."""
    layers = keras.layers
    tokens = keras.Input((7,))
    embedded = layers.Embedding(12, 4, mask_zero=True)(tokens)
    states = layers.Bidirectional(layers.LSTM(4, return_sequences=True))(embedded)
    pooled = layers.GlobalAveragePooling1D()(layers.GRU(3, return_sequences=True)(states))
    text = keras.Model(tokens, layers.Dense(3, activation="softmax")(pooled), name="text")
    features = keras.Input((7, 3))
    read = layers.LSTM(4)(layers.Masking(0.0)(features))
    masking = keras.Model(features, layers.Dense(3, activation="softmax")(read), name="masking")
    tokens = keras.Input((7,))
    embedded = layers.Embedding(12, 4, mask_zero=True)(tokens)
    joined = layers.Concatenate()([embedded, layers.Dense(4, activation="tanh")(embedded)])
    merge = keras.Model(tokens, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling1D()(joined)),
                        name="merge")
    return {"text": (text, "x"), "masking": (masking, "features"), "merge": (merge, "x")}


def build_masked_functional(keras):
    """``keras3_masked_functional.npz`` and a ``.keras`` file per masked_functional_models() model (the text model
    as ``keras3_masked_functional.keras``, the others with their name after it): the inputs, each model's
    predictions and evaluate's [loss, accuracy] (the masks Keras records as ops: NotEqual, Any, LogicalOr...)."""
    keras.utils.set_random_seed(37)
    rng = np.random.default_rng(37)
    x, features = padded_sequences(rng, 16)
    x[(x == 0).all(axis=1), 0] = 1          # a sample with no kept step averages 0 / 0 in Keras: nan
    features = features * (x[..., None] != 0)  # Masking skips the steps the tokens pad
    record = {"x": x, "features": features, "y": rng.integers(0, 3, 16)}
    for name, (model, input_name) in masked_functional_models(keras).items():
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        inputs = record[input_name]
        record[f"{name}_predictions"] = model.predict(inputs, verbose=0)
        record[f"{name}_evaluate"] = np.asarray(model.evaluate(inputs, record["y"], verbose=0))
        model.save("keras3_masked_functional.keras" if name == "text" else f"keras3_masked_functional_{name}.keras")
    np.savez("keras3_masked_functional.npz", **record)


def transformer_classes(keras):
    """(TokenAndPositionEmbedding, TransformerBlock): custom layers made of layers, as Keras's text
    classification example writes them (its dropout at 0, so that training is deterministic)."""
    layers = keras.layers

    class TransformerBlock(layers.Layer):
        def __init__(self, embed_dim, num_heads, ff_dim, **kwargs):
            super().__init__(**kwargs)
            self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.ffn = keras.Sequential([layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)])
            self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
            self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
            self.dropouts = [layers.Dropout(0.0), layers.Dropout(0.0)]

        def call(self, inputs, training=False):
            attended = self.dropouts[0](self.att(inputs, inputs), training=training)
            out1 = self.layernorm1(inputs + attended)
            return self.layernorm2(out1 + self.dropouts[1](self.ffn(out1), training=training))

    class TokenAndPositionEmbedding(layers.Layer):
        def __init__(self, maxlen, vocab_size, embed_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
            self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

        def call(self, x):
            positions = self.pos_emb(keras.ops.arange(start=0, stop=keras.ops.shape(x)[-1], step=1))
            return self.token_emb(x) + positions

    return TokenAndPositionEmbedding, TransformerBlock


def attention_models(keras):
    """{name: (model, the names of its inputs in attention_inputs(), targets per step)}."""
    layers = keras.layers
    query, value, key = keras.Input((5, 8)), keras.Input((6, 4)), keras.Input((6, 7))
    attended = layers.MultiHeadAttention(num_heads=2, key_dim=3, name="cross")(query, value, key)
    cross = keras.Model([query, value, key], layers.Dense(3, activation="softmax")(
        layers.GlobalAveragePooling1D()(attended)), name="cross")
    tokens = keras.Input((7,))
    embedded = layers.Embedding(12, 8, mask_zero=True)(tokens)
    attended = layers.MultiHeadAttention(num_heads=2, key_dim=4)(embedded, embedded, use_causal_mask=True)
    normalized = layers.LayerNormalization()(attended)      # no residual Add: Keras 3.15 drops the mask there
    decoder = keras.Model(tokens, layers.Dense(3, activation="softmax")(normalized), name="decoder")
    features, allowed = keras.Input((6, 8)), keras.Input((6, 6))
    attended = layers.MultiHeadAttention(num_heads=3, key_dim=4, value_dim=2, use_gate=True, output_shape=5,
                                         sliding_window=3)(features, features, attention_mask=allowed)
    gated = keras.Model([features, allowed], layers.Dense(3, activation="softmax")(
        layers.GlobalAveragePooling1D()(attended)), name="gated")
    embedding, block = transformer_classes(keras)
    tokens = keras.Input((7,))
    encoded = block(8, 2, 16)(embedding(7, 12, 8)(tokens))
    transformer = keras.Model(tokens, layers.Dense(3, activation="softmax")(
        layers.GlobalAveragePooling1D()(encoded)), name="transformer")
    return {"cross": (cross, ["query", "value", "key"], False), "decoder": (decoder, ["tokens"], True),
            "gated": (gated, ["features", "allowed"], False), "transformer": (transformer, ["tokens"], False)}


def attention_inputs(rng, count=24):
    """The arrays attention_models() read: padded tokens, float sequences, and an attention mask (batch, 6, 6) that
    leaves every query at least itself."""
    tokens, _ = padded_sequences(rng, count)
    allowed = (rng.random((count, 6, 6)) > 0.4) | np.eye(6, dtype=bool)
    return {"tokens": tokens, "query": rng.standard_normal((count, 5, 8)).astype("float32"),
            "value": rng.standard_normal((count, 6, 4)).astype("float32"),
            "key": rng.standard_normal((count, 6, 7)).astype("float32"),
            "features": rng.standard_normal((count, 6, 8)).astype("float32"), "allowed": allowed.astype("float32")}


def record_models(keras, seed, make_inputs, make_models, steps, npz, savers):
    """Into ``npz``: the inputs ``make_inputs(rng)`` gives, then for each of ``make_models(keras)`` (name: (model,
    the names of its inputs, targets per step)) its record_one_epoch, with random class targets (one per step of
    ``steps`` when per step); ``savers``: {name: a function that saves that model}."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = make_inputs(rng)
    record = dict(inputs)
    for name, (model, names, per_step) in make_models(keras).items():
        x = [inputs[n] for n in names] if len(names) > 1 else inputs[names[0]]
        record_one_epoch(keras, model, name, x, rng.integers(0, 3, (24, steps) if per_step else 24), record)
        savers.get(name, lambda model: None)(model)
    np.savez(npz, **record)


def build_and_save_attention(keras):
    """``keras3_attention.npz``: for each of attention_models(), its first weights, predictions, evaluate's [loss,
    accuracy] and the weights after one unshuffled epoch of Adam (batch 8); the cross-attention model also as
    .keras, and the transformer's weights as Keras 3 lays out a custom layer made of layers (.weights.h5)."""
    record_models(keras, 13, attention_inputs, attention_models, 7, "keras3_attention.npz",
                  {"cross": lambda model: model.save("keras3_attention_cross.keras"),
                   "transformer": lambda model: model.save_weights("keras3_transformer.weights.h5")})


def state_models(keras):
    """{name: (model, the names of its inputs in state_inputs(), targets per step)}: recurrent layers that hand
    their last states on (return_state) to layers that start from them (initial_state), or to Dense layers."""
    layers = keras.layers
    source, target = keras.Input((6, 5)), keras.Input((5, 4))
    _, state_h, state_c = layers.LSTM(6, return_state=True, name="encoder")(source)
    decoded, _, _ = layers.LSTM(6, return_sequences=True, return_state=True, name="decoder")(
        target, initial_state=[state_h, state_c])
    seq2seq = keras.Model([source, target], layers.Dense(3, activation="softmax")(decoded), name="seq2seq")
    tokens, features = keras.Input((7,)), keras.Input((7, 3))
    _, state = layers.GRU(4, return_state=True, reset_after=False)(layers.Embedding(12, 4, mask_zero=True)(tokens))
    read = layers.SimpleRNN(4, go_backwards=True)(features, initial_state=state)
    padded = keras.Model([tokens, features], layers.Dense(3, activation="softmax")(read), name="padded")
    sequences, last = layers.GRU(5, return_sequences=True, return_state=True, go_backwards=True)(features)
    joined = layers.Concatenate()([layers.GlobalAveragePooling1D()(sequences), last])
    pooled = keras.Model(features, layers.Dense(3, activation="softmax")(joined), name="pooled")
    return {"seq2seq": (seq2seq, ["source", "target"], True), "padded": (padded, ["tokens", "features"], False),
            "pooled": (pooled, ["features"], False)}


def state_inputs(rng, count=24):
    """The arrays state_models() read: float sequences of two lengths, and padded tokens with float features."""
    tokens, features = padded_sequences(rng, count)
    return {"source": rng.standard_normal((count, 6, 5)).astype("float32"),
            "target": rng.standard_normal((count, 5, 4)).astype("float32"), "tokens": tokens, "features": features}


def build_and_save_states(keras):
    """``keras3_states.npz``: for each of state_models(), its first weights, predictions, evaluate's [loss,
    accuracy] and the weights after one unshuffled epoch of Adam (batch 8); the seq2seq model also as .keras."""
    record_models(keras, 17, state_inputs, state_models, 5, "keras3_states.npz",
                  {"seq2seq": lambda model: model.save("keras3_seq2seq.keras")})


def bidirectional_state_models(keras):
    """{name: (model, its inputs in bidirectional_state_inputs(), targets per step)}: Bidirectional layers that
    return their states (a bidirectional encoder's concatenated states start a decoder) or start from given
    ones (made by Dense layers from a context vector)."""
    layers = keras.layers
    source, target = keras.Input((6, 5)), keras.Input((5, 4))
    _, forward_h, forward_c, backward_h, backward_c = layers.Bidirectional(
        layers.LSTM(6, return_state=True), name="encoder")(source)
    decoded = layers.LSTM(12, return_sequences=True, name="decoder")(target, initial_state=[
        layers.Concatenate()([forward_h, backward_h]), layers.Concatenate()([forward_c, backward_c])])
    seq2seq = keras.Model([source, target], layers.Dense(3, activation="softmax")(decoded), name="seq2seq")
    features, context = keras.Input((7, 3)), keras.Input((3,))
    read = layers.Bidirectional(layers.GRU(4), merge_mode="sum")(features, initial_state=[
        layers.Dense(4, activation="tanh")(context), layers.Dense(4, activation="tanh")(context)])
    started = keras.Model([features, context], layers.Dense(3, activation="softmax")(read), name="started")
    tokens = keras.Input((7,))
    out, forward, backward = layers.Bidirectional(layers.SimpleRNN(4, return_state=True), merge_mode="ave")(
        layers.Embedding(12, 4, mask_zero=True)(tokens))
    masked = keras.Model(tokens, layers.Dense(3, activation="softmax")(layers.Concatenate()([out, forward, backward])),
                         name="masked")
    return {"seq2seq": (seq2seq, ["source", "target"], True), "started": (started, ["features", "context"], False),
            "masked": (masked, ["tokens"], False)}


def bidirectional_state_inputs(rng, count=24):
    """The arrays bidirectional_state_models() read."""
    inputs = state_inputs(rng, count)
    return {**inputs, "context": rng.standard_normal((count, 3)).astype("float32")}


def build_and_save_bidirectional_states(keras):
    """``keras3_bidirectional_states.npz``: for each of bidirectional_state_models(), its record_one_epoch; the
    seq2seq model also as ``keras3_bidirectional_seq2seq.keras``."""
    record_models(keras, 23, bidirectional_state_inputs, bidirectional_state_models, 5,
                  "keras3_bidirectional_states.npz",
                  {"seq2seq": lambda model: model.save("keras3_bidirectional_seq2seq.keras")})


#: Conv2DTranspose arguments of keras3_conv_transpose.npz's single-layer cases (and one Conv1DTranspose, last)
CONV_TRANSPOSE_CASES = [
    {"filters": 3, "kernel_size": 3}, {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"},
    {"filters": 2, "kernel_size": 4, "strides": 2, "padding": "same"}, {"filters": 2, "kernel_size": 3, "strides": 2},
    {"filters": 2, "kernel_size": 2, "strides": 3}, {"filters": 2, "kernel_size": 3, "padding": "same",
                                                       "dilation_rate": 2},
    {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 1},
    {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": 1},
    {"filters": 2, "kernel_size": [3, 2], "strides": [2, 1], "padding": "same"},
    {"filters": 2, "kernel_size": 4, "strides": 2, "padding": "same", "output_padding": 1},
    {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same", "rank": 1},
]


def conv_transpose_models(keras):
    """{name: (model, its inputs in conv_transpose_inputs(), targets per step)}: a convolutional autoencoder
    (trained here on sparse labels per pixel, as the helpers record) and a Conv1DTranspose classifier."""
    layers = keras.layers
    images = keras.Input((8, 8, 1))
    encoded = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(images)
    decoded = layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu")(encoded)
    autoencoder = keras.Model(images, layers.Reshape((64, 3))(layers.Conv2D(3, 3, padding="same",
                                                                             activation="softmax")(decoded)),
                              name="autoencoder")
    steps = keras.Input((6, 2))
    upsampled = layers.Conv1DTranspose(3, 3, strides=2, activation="tanh")(steps)
    classifier = keras.Model(steps, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling1D()(upsampled)),
                             name="classifier")
    return {"autoencoder": (autoencoder, ["images"], True), "classifier": (classifier, ["steps"], False)}


def conv_transpose_inputs(rng, count=24):
    """The arrays conv_transpose_models() read, and the single-layer cases' inputs."""
    return {"images": rng.random((count, 8, 8, 1)).astype("float32"),
            "steps": rng.standard_normal((count, 6, 2)).astype("float32"),
            "case_x": rng.standard_normal((2, 5, 4, 3)).astype("float32"),
            "case_x1": rng.standard_normal((2, 5, 3)).astype("float32")}


def build_conv_transpose(keras):
    """``keras3_conv_transpose.npz``: each CONV_TRANSPOSE_CASES layer's weights and output on a random input; the
    record_one_epoch of conv_transpose_models() (per-pixel labels for the autoencoder); the autoencoder also as
    ``keras3_conv_transpose.keras``."""
    cases = [("Conv1DTranspose" if case.get("rank") == 1 else "Conv2DTranspose",
              {key: value for key, value in case.items() if key != "rank"}) for case in CONV_TRANSPOSE_CASES]
    record_models(keras, 29, lambda rng: layer_case_outputs(keras, cases, conv_transpose_inputs(rng)),
                  conv_transpose_models, 64, "keras3_conv_transpose.npz",
                  {"autoencoder": lambda model: model.save("keras3_conv_transpose.keras")})


def layer_case_outputs(keras, cases, inputs):
    """``inputs`` and, for each (Keras layer class name, arguments) of ``cases``, that layer's weights and output
    (its bias drawn at random) on inputs["case_x1"] for a 1-D class, else inputs["case_x"]."""
    record = dict(inputs)
    for index, (class_name, options) in enumerate(cases):
        layer = getattr(keras.layers, class_name)(**options, bias_initializer="random_normal")
        out = np.asarray(keras.ops.convert_to_numpy(layer(inputs["case_x1" if "1D" in class_name else "case_x"])))
        record.update({f"case{index}_out": out, **{f"case{index}_w{i}": np.asarray(w)
                                                   for i, w in enumerate(layer.get_weights())}})
    return record


#: (Keras class, arguments) of keras3_separable_conv.npz's single-layer cases
SEPARABLE_CASES = [
    ("DepthwiseConv2D", {"kernel_size": 3}),
    ("DepthwiseConv2D", {"kernel_size": 3, "strides": 2, "padding": "same", "depth_multiplier": 2}),
    ("DepthwiseConv2D", {"kernel_size": [2, 3], "dilation_rate": 2, "activation": "relu"}),
    ("SeparableConv2D", {"filters": 4, "kernel_size": 3}),
    ("SeparableConv2D", {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "depth_multiplier": 3,
                         "activation": "tanh"}),
    ("DepthwiseConv1D", {"kernel_size": 3, "depth_multiplier": 2}),
    ("SeparableConv1D", {"filters": 4, "kernel_size": 2, "strides": 2, "padding": "same"}),
]


def separable_models(keras):
    """{name: (model, its inputs, targets per step)}: a small MobileNet-style image classifier and a text one."""
    layers = keras.layers
    images = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(images)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu")(x)
    x = layers.SeparableConv2D(6, 3, padding="same", depth_multiplier=2, activation="relu")(x)
    mobile = keras.Model(images, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(x)),
                         name="mobile")
    tokens = keras.Input((9,))
    x = layers.SeparableConv1D(5, 3, activation="relu")(layers.Embedding(12, 4)(tokens))
    x = layers.DepthwiseConv1D(2, depth_multiplier=2)(x)
    text = keras.Model(tokens, layers.Dense(3, activation="softmax")(layers.GlobalMaxPooling1D()(x)), name="text")
    return {"mobile": (mobile, ["images"], False), "text": (text, ["tokens"], False)}


def separable_inputs(rng, count=24):
    """The arrays separable_models() and SEPARABLE_CASES read."""
    return {"images": rng.standard_normal((count, 8, 8, 3)).astype("float32"),
            "tokens": rng.integers(0, 12, (count, 9)), "case_x": rng.standard_normal((2, 6, 5, 3)).astype("float32"),
            "case_x1": rng.standard_normal((2, 7, 3)).astype("float32")}


def build_separable(keras):
    """``keras3_separable_conv.npz``: each SEPARABLE_CASES layer's weights and output, the record_one_epoch of
    separable_models(); the image model also as ``keras3_separable_conv.keras``."""
    record_models(keras, 31, lambda rng: layer_case_outputs(keras, SEPARABLE_CASES, separable_inputs(rng)),
                  separable_models, 1, "keras3_separable_conv.npz",
                  {"mobile": lambda model: model.save("keras3_separable_conv.keras")})


#: (Keras class, arguments) of keras3_augmentation.npz's layer cases: ranges of one value, so that Keras's
#: transform of each image is known
AUGMENTATION_CASES = [
    ("RandomRotation", {"factor": [0.1, 0.1]}),
    ("RandomRotation", {"factor": [-0.3, -0.3], "fill_mode": "constant", "fill_value": 7.0}),
    ("RandomRotation", {"factor": [0.2, 0.2], "fill_mode": "wrap", "interpolation": "nearest"}),
    ("RandomRotation", {"factor": [0.45, 0.45], "fill_mode": "nearest"}),
    ("RandomZoom", {"height_factor": [0.3, 0.3], "width_factor": [-0.2, -0.2]}),
    ("RandomZoom", {"height_factor": [0.5, 0.5], "fill_mode": "nearest"}),
    ("RandomZoom", {"height_factor": [-0.4, -0.4], "fill_mode": "wrap", "interpolation": "nearest"}),
    ("RandomTranslation", {"height_factor": [0.2, 0.2], "width_factor": [-0.35, -0.35]}),
    ("RandomTranslation", {"height_factor": [-0.6, -0.6], "width_factor": [0.45, 0.45], "fill_mode": "constant"}),
    ("RandomTranslation", {"height_factor": [1.0, 1.0], "width_factor": [-0.7, -0.7], "fill_mode": "wrap"}),
    ("RandomBrightness", {"factor": [0.1, 0.1]}),
    ("RandomBrightness", {"factor": [-0.3, -0.3], "value_range": [0.0, 1.0]}),
]

#: (Keras class, arguments) of keras3_augmentation.npz's resizing cases, on images of 7 x 9
RESIZING_CASES = [
    ("Resizing", {"height": 12, "width": 5}),
    ("Resizing", {"height": 3, "width": 4}),
    ("Resizing", {"height": 14, "width": 18, "interpolation": "nearest"}),    # 2x: every backend's nearest agrees
    ("Resizing", {"height": 6, "width": 6, "crop_to_aspect_ratio": True}),
    ("Resizing", {"height": 4, "width": 10, "crop_to_aspect_ratio": True}),
    ("Resizing", {"height": 6, "width": 4, "pad_to_aspect_ratio": True, "fill_value": 3.0}),
    ("Resizing", {"height": 5, "width": 12, "pad_to_aspect_ratio": True}),
    ("CenterCrop", {"height": 4, "width": 6}),
    ("CenterCrop", {"height": 5, "width": 11}),
    ("CenterCrop", {"height": 9, "width": 3}),
    ("RandomCrop", {"height": 8, "width": 5}),          # not larger along both axes: resized, in training too
    ("RandomCrop", {"height": 3, "width": 12}),
]


def augmentation_model(keras):
    """An image classifier behind every augmentation layer nnengine has (Keras's tutorial's start)."""
    layers = keras.layers
    return keras.Sequential([
        keras.Input((8, 8, 3)), layers.RandomFlip("horizontal", seed=1), layers.RandomRotation(0.1, seed=2),
        layers.RandomZoom(0.2, 0.1, seed=3), layers.RandomTranslation(0.1, 0.2, fill_mode="constant", seed=4),
        layers.RandomContrast(0.2, seed=5), layers.RandomBrightness(0.1, seed=6), layers.Rescaling(1 / 255),
        layers.Conv2D(4, 3, activation="relu"), layers.GlobalAveragePooling2D(),
        layers.Dense(3, activation="softmax")])


def build_augmentation(keras):
    """``keras3_augmentation.npz``: each AUGMENTATION_CASES layer's training output on random images, each
    RESIZING_CASES layer's output on them; and
    augmentation_model() saved as ``keras3_augmentation.keras`` with its predictions and evaluate's [loss,
    accuracy] (inference: the augmentation layers are the identity)."""
    keras.utils.set_random_seed(37)
    rng = np.random.default_rng(37)
    images = rng.uniform(0, 255, (3, 7, 9, 2)).astype("float32")
    record = {"case_x": images}
    for index, (class_name, options) in enumerate(AUGMENTATION_CASES):
        layer = getattr(keras.layers, class_name)(**options)
        record[f"case{index}_out"] = np.asarray(keras.ops.convert_to_numpy(layer(images, training=True)))
    for index, (class_name, options) in enumerate(RESIZING_CASES):
        layer = getattr(keras.layers, class_name)(**options)
        record[f"resizing{index}_out"] = np.asarray(keras.ops.convert_to_numpy(layer(images)))
    model = augmentation_model(keras)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = rng.uniform(0, 255, (16, 8, 8, 3)).astype("float32"), rng.integers(0, 3, 16)
    record.update(x=x, y=y, predictions=model.predict(x, verbose=0),
                  evaluate=np.asarray(model.evaluate(x, y, verbose=0)))
    np.savez("keras3_augmentation.npz", **record)
    model.save("keras3_augmentation.keras")


def build_category_encoding(keras):
    """``keras3_category_encoding.npz``: CategoryEncoding(5)'s output in each mode (and one-hot of several values
    per sample); a model counting categories into a Dense layer, saved as ``keras3_category_encoding.keras`` with
    its predictions and evaluate's [loss, accuracy]."""
    rng = np.random.default_rng(41)
    cases = {"multi_hot": np.array([[1, 1, 2], [0, 3, 3]]), "one_hot": np.array([[1], [3], [0]]),
             "count": rng.integers(0, 5, (4, 6))}
    record = {}
    for mode, x in cases.items():
        record[f"{mode}_x"] = x
        record[f"{mode}_out"] = np.asarray(keras.layers.CategoryEncoding(num_tokens=5, output_mode=mode)(x))
    record["one_hot_many_out"] = np.asarray(keras.layers.CategoryEncoding(5, output_mode="one_hot")(cases["count"]))
    keras.utils.set_random_seed(41)
    model = keras.Sequential([keras.Input((6,), dtype="int32"), keras.layers.CategoryEncoding(5, output_mode="count"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = rng.integers(0, 5, (16, 6)), rng.integers(0, 3, 16)
    record.update(x=x, y=y, predictions=model.predict(x, verbose=0),
                  evaluate=np.asarray(model.evaluate(x, y, verbose=0)))
    np.savez("keras3_category_encoding.npz", **record)
    model.save("keras3_category_encoding.keras")


#: (case, layer class, its arguments, input shape) of keras3_group_rms.npz
NORMALIZATION_CASES = [
    ("group_rows", "GroupNormalization", dict(groups=2), (4, 6)),
    ("group_image", "GroupNormalization", dict(groups=4, epsilon=1e-5), (3, 5, 5, 8)),
    ("group_instance", "GroupNormalization", dict(groups=-1), (2, 4, 4, 3)),
    ("group_one", "GroupNormalization", dict(groups=1), (2, 3, 3, 4)),
    ("group_channels_first", "GroupNormalization", dict(groups=3, axis=1), (2, 6, 4, 4)),
    ("group_bare", "GroupNormalization", dict(groups=2, center=False, scale=False), (3, 7, 4)),
    ("rms_rows", "RMSNormalization", {}, (4, 6)),
    ("rms_sequence", "RMSNormalization", dict(epsilon=1e-3), (3, 5, 8)),
    ("rms_two_axes", "RMSNormalization", dict(axis=[1, 2]), (2, 3, 4)),
]


def norm_model(keras):
    """A small image classifier through GroupNormalization and RMSNormalization."""
    layers = keras.layers
    return keras.Sequential([keras.Input((6, 6, 2)), layers.Conv2D(8, 3), layers.GroupNormalization(groups=4),
                             layers.Activation("relu"), layers.GlobalAveragePooling2D(), layers.Dense(6),
                             layers.RMSNormalization(), layers.Dense(3, activation="softmax")])


def build_group_rms(keras):
    """``keras3_group_rms.npz``: each NORMALIZATION_CASES layer's output on random inputs, with its weights (drawn
    at random, so that gamma and beta matter) and config; norm_model() saved as ``keras3_group_rms.keras`` with
    its predictions, evaluate's [loss, accuracy] and its weights after one more epoch of Keras's training."""
    rng = np.random.default_rng(43)
    record = {}
    for case, class_name, arguments, shape in NORMALIZATION_CASES:
        layer = getattr(keras.layers, class_name)(**arguments)
        x = (rng.standard_normal(shape) * 3 + 1).astype("float32")
        layer.build(shape)
        layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()])
        record[f"{case}_x"], record[f"{case}_out"] = x, keras.ops.convert_to_numpy(layer(x))
        for index, weight in enumerate(layer.get_weights()):
            record[f"{case}_w{index}"] = weight
        record[f"{case}_config"] = np.array(json.dumps(layer.get_config()))
    keras.utils.set_random_seed(43)
    model = norm_model(keras)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = rng.standard_normal((16, 6, 6, 2)).astype("float32"), rng.integers(0, 3, 16)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save("keras3_group_rms.keras")
    record.update(x=x, y=y, predictions=model.predict(x, verbose=0),
                  evaluate=np.asarray(model.evaluate(x, y, verbose=0)))
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    record.update({f"trained_{i}": w for i, w in enumerate(model.get_weights())})
    np.savez("keras3_group_rms.npz", **record)


#: (case, layer class, its arguments, whether a key is given, call options, weights) of keras3_seq_attention.npz
SEQUENCE_ATTENTION_CASES = [
    ("dot", "Attention", {}, False, {}, []),
    ("dot_scaled_key", "Attention", dict(use_scale=True), True, {}, [0.7]),
    ("concat", "Attention", dict(score_mode="concat", use_scale=True), False, {}, [0.6, 1.3]),
    ("concat_plain", "Attention", dict(score_mode="concat"), True, {}, [0.8]),
    ("causal", "Attention", {}, False, dict(use_causal_mask=True), []),
    ("masked", "Attention", dict(use_scale=True), False, dict(masked=True), [1.4]),
    ("additive", "AdditiveAttention", {}, True, {}, None),
    ("additive_plain_causal", "AdditiveAttention", dict(use_scale=False), False, dict(use_causal_mask=True), []),
    ("additive_masked", "AdditiveAttention", {}, False, dict(masked=True), None),
]


def sequence_attention_models(keras):
    """{name: model}: a query/value text model through Attention and AdditiveAttention on Embedding(mask_zero=True)
    masks (Keras's Attention example, smaller), and a causal self-attention model (the option in its config)."""
    layers = keras.layers
    query_in, value_in = keras.Input((7,), dtype="int32"), keras.Input((5,), dtype="int32")
    embed = layers.Embedding(12, 6, mask_zero=True)
    query, value = embed(query_in), embed(value_in)
    dot = layers.GlobalAveragePooling1D()(layers.Attention(use_scale=True)([query, value]))
    additive = layers.GlobalAveragePooling1D()(layers.AdditiveAttention()([query, value]))
    text = keras.Model([query_in, value_in], layers.Dense(3, activation="softmax")(
        layers.Concatenate()([dot, additive])))
    sequence = keras.Input((6, 4))
    hidden = layers.Dense(5, activation="tanh")(sequence)
    attended = layers.Attention(score_mode="concat")([hidden, hidden], use_causal_mask=True)
    causal = keras.Model(sequence, layers.Dense(3, activation="softmax")(layers.Flatten()(attended)))
    return {"text": text, "causal": causal}


def padded_tokens(rng, count, steps):
    """Integer sequences in [1, 12), each with 0 to steps - 2 padding zeros at its end."""
    tokens = rng.integers(1, 12, (count, steps))
    for row, kept in zip(tokens, rng.integers(2, steps + 1, count)):
        row[kept:] = 0
    return tokens


def build_sequence_attention(keras):
    """``keras3_seq_attention.npz``: each SEQUENCE_ATTENTION_CASES layer's output and attention scores on random
    inputs, its weights and config; each sequence_attention_models() model saved as
    ``keras3_seq_attention_<name>.keras`` after one epoch, with its predictions, evaluate's [loss, accuracy] and
    its weights after one more epoch of Keras's training (no shuffle)."""
    rng = np.random.default_rng(47)
    record = {}
    for case, class_name, arguments, with_key, options, weights in SEQUENCE_ATTENTION_CASES:
        layer = getattr(keras.layers, class_name)(**arguments)
        steps = 4 if options.get("use_causal_mask") else 5
        query, value, key = (rng.standard_normal(shape).astype("float32") for shape in
                             ((3, 4, 6), (3, steps, 5 if with_key else 6), (3, steps, 6)))
        inputs = [query, value, key] if with_key else [query, value]      # without a key, the value is the key
        call = {"use_causal_mask": options.get("use_causal_mask", False)}
        if options.get("masked"):
            query_mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], bool)
            value_mask = np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], bool)
            call["mask"] = [query_mask, value_mask]
            record[f"{case}_query_mask"], record[f"{case}_value_mask"] = query_mask, value_mask
        layer.build([x.shape for x in inputs])
        if weights is None:
            weights = [rng.uniform(-1, 1, w.shape).astype("float32") for w in layer.get_weights()]
        layer.set_weights([np.asarray(w, "float32") for w in weights])
        out, scores = layer(inputs, return_attention_scores=True, **call)
        for index, x in enumerate(inputs):
            record[f"{case}_in{index}"] = x
        record[f"{case}_out"] = keras.ops.convert_to_numpy(out)
        record[f"{case}_scores"] = keras.ops.convert_to_numpy(scores)
        for index, weight in enumerate(layer.get_weights()):
            record[f"{case}_w{index}"] = weight
        record[f"{case}_config"] = np.array(json.dumps(layer.get_config()))
    models = sequence_attention_models(keras)
    data = {"text": ([padded_tokens(rng, 16, 7), padded_tokens(rng, 16, 5)], rng.integers(0, 3, 16)),
            "causal": (rng.standard_normal((16, 6, 4)).astype("float32"), rng.integers(0, 3, 16))}
    keras.utils.set_random_seed(47)
    for name, model in models.items():
        x, y = data[name]
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        model.save(f"keras3_seq_attention_{name}.keras")
        xs = x if isinstance(x, list) else [x]
        record.update({f"{name}_x{i}": item for i, item in enumerate(xs)})
        record.update({f"{name}_y": y, f"{name}_predictions": model.predict(x, verbose=0),
                       f"{name}_evaluate": np.asarray(model.evaluate(x, y, verbose=0))})
        model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
        record.update({f"{name}_trained_{i}": w for i, w in enumerate(model.get_weights())})
    np.savez("keras3_seq_attention.npz", **record)


#: (data kind, Keras metric class, its arguments) of keras3_loss_metrics.json
LOSS_METRIC_CASES = [("classes", name, {}) for name in ("CategoricalCrossentropy", "SparseCategoricalCrossentropy",
                                                        "KLDivergence", "Poisson", "CategoricalHinge",
                                                        "CosineSimilarity")] + \
    [("classes", "CategoricalCrossentropy", {"label_smoothing": 0.1})] + \
    [("binary", name, {}) for name in ("BinaryCrossentropy", "Hinge", "SquaredHinge")] + \
    [("values", name, {}) for name in ("MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "LogCoshError",
                                       "RootMeanSquaredError", "CosineSimilarity", "R2Score")] + \
    [("values", "R2Score", {"class_aggregation": "variance_weighted_average"}),
     ("values", "R2Score", {"num_regressors": 2})] + \
    [("binary", name, {}) for name in ("TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives")] + \
    [("binary", "FalseNegatives", {"thresholds": 0.3, "name": "fn_0_3"}),
     ("binary", "TruePositives", {"thresholds": 0.8, "name": "tp_0_8"}),
     ("classes", "FBetaScore", {"beta": 2.0, "average": "macro"}),
     ("classes", "FBetaScore", {"beta": 0.5, "average": "weighted"}),
     ("binary", "FBetaScore", {"beta": 1.5, "average": "micro", "threshold": 0.4})]


def loss_metric_batches(kind, rng):
    """Three batches (y_true, y_pred, weights or None; the second weighted) of one kind of data: 'classes' (one-hot
    targets with their labels last, softmax predictions), 'binary' (0/1 targets, sigmoid predictions of 3 labels)
    or 'values' (any floats, zeros and negatives among the targets)."""
    batches = []
    for index in range(3):
        weight = rng.random(20).astype("float32") if index == 1 else None
        if kind == "classes":
            logits = rng.standard_normal((20, 5)).astype("float32")
            labels = rng.integers(0, 5, 20)
            batches.append((np.eye(5, dtype="float32")[labels], np.exp(logits) / np.exp(logits).sum(-1, keepdims=True),
                            weight, labels))
        elif kind == "binary":
            batches.append((rng.integers(0, 2, (20, 3)).astype("float32"),
                            1 / (1 + np.exp(-rng.standard_normal((20, 3)).astype("float32"))), weight, None))
        else:
            y_true = rng.standard_normal((20, 3)).astype("float32") * 2
            y_true[::7] = 0
            batches.append((y_true, rng.standard_normal((20, 3)).astype("float32") * 2, weight, None))
    return batches


def build_loss_metrics(keras):
    """``keras3_loss_metrics.json``: each LOSS_METRIC_CASES metric's name and result over its three batches."""
    rng = np.random.default_rng(21)
    data = {kind: loss_metric_batches(kind, rng) for kind in ("classes", "binary", "values")}
    cases = []
    for kind, name, arguments in LOSS_METRIC_CASES:
        metric = getattr(keras.metrics, name)(**arguments)
        for y_true, y_pred, weight, labels in data[kind]:
            metric.update_state(labels if name.startswith("Sparse") else y_true, y_pred, sample_weight=weight)
        cases.append({"kind": kind, "class_name": name, "arguments": arguments, "name": metric.name,
                      "result": float(keras.ops.convert_to_numpy(metric.result()))})
    batches = {kind: [[part if part is None else np.asarray(part).tolist() for part in batch] for batch in value]
               for kind, value in data.items()}
    with open("keras3_loss_metrics.json", "w") as file:
        json.dump({"keras_version": keras.__version__, "batches": batches, "cases": cases}, file)


#: (kind of data in confusion_batches(), Keras metric class, its arguments) of keras3_confusion_metrics.json
CONFUSION_METRIC_CASES = [
    ("binary", "Precision", {"thresholds": [0.3, 0.5, 0.8]}), ("binary", "Recall", {"thresholds": [0.3, 0.7]}),
    ("binary", "Precision", {"thresholds": [0.5]}), ("binary", "TruePositives", {"thresholds": [0.4]}),
    ("classes", "Precision", {"top_k": 2}), ("classes", "Recall", {"top_k": 3}),
    ("classes", "Precision", {"class_id": 2}), ("binary", "Recall", {"class_id": 1, "thresholds": 0.4}),
    ("classes", "Precision", {"top_k": 2, "class_id": 1}), ("classes", "Recall", {"top_k": 1, "thresholds": 0.2}),
    ("binary", "SensitivityAtSpecificity", {"specificity": 0.6}),
    ("binary", "SensitivityAtSpecificity", {"specificity": 0.3, "num_thresholds": 50}),
    ("classes", "SensitivityAtSpecificity", {"specificity": 0.8, "class_id": 0}),
    ("binary", "SpecificityAtSensitivity", {"sensitivity": 0.7}),
    ("binary", "SpecificityAtSensitivity", {"sensitivity": 0.5, "num_thresholds": 1}),
    ("binary", "PrecisionAtRecall", {"recall": 0.5}), ("classes", "PrecisionAtRecall", {"recall": 0.8, "class_id": 1}),
    ("binary", "RecallAtPrecision", {"precision": 0.6}), ("binary", "RecallAtPrecision", {"precision": 0.99}),
    ("logits", "SensitivityAtSpecificity", {"specificity": 0.5}), ("logits", "AUC", {}),
    ("logits", "AUC", {"curve": "PR"}), ("logits", "PrecisionAtRecall", {"recall": 0.3}),
    ("segmentation", "IoU", {"num_classes": 4, "target_class_ids": [0, 2]}),
    ("segmentation", "MeanIoU", {"num_classes": 4}), ("segmentation", "MeanIoU", {"num_classes": 4, "ignore_class": 3}),
    ("segmentation", "MeanIoU", {"num_classes": 4, "sparse_y_pred": False}),
    ("segmentation", "IoU", {"num_classes": 4, "target_class_ids": [1], "sparse_y_pred": False, "ignore_class": 0}),
    ("fractional", "MeanIoU", {"num_classes": 4, "dtype": "float32"}), ("fractional", "MeanIoU", {"num_classes": 4}),
    ("one_hot", "OneHotIoU", {"num_classes": 4, "target_class_ids": [1, 3]}),
    ("one_hot", "OneHotMeanIoU", {"num_classes": 4}),
    ("scores", "BinaryIoU", {}), ("scores", "BinaryIoU", {"target_class_ids": [1], "threshold": 0.3}),
    ("scores", "BinaryIoU", {"target_class_ids": [0], "dtype": "float32"}),
]


def confusion_batches(kind, rng):
    """Three batches (y_true, y_pred, weights or None; the second weighted) of one kind of data: 'binary' (0/1
    targets and sigmoid scores of 3 labels), 'classes' (one-hot targets, softmax scores of 5), 'logits' (0/1
    targets, scores outside [0, 1] too), 'scores' (one 0/1 target and score per sample), 'segmentation' (class
    maps (8, 6, 6) in [0, 4) with a few 255s (void), and scores (8, 6, 6, 4): the predicted classes are their
    argmax, given as classes unless sparse_y_pred=False; integer weights per pixel), 'fractional' (the same with
    fractional weights) and 'one_hot' (one-hot maps, scores)."""
    batches = []
    for index in range(3):
        weighted = index == 1
        if kind == "scores":                     # one 0/1 target and one score per sample, integer weights
            batches.append((rng.integers(0, 2, 30).astype("float32"), rng.random(30).astype("float32"),
                            rng.integers(0, 3, 30).astype("float32") if weighted else None))
        elif kind in ("binary", "logits"):
            scores = rng.standard_normal((20, 3)).astype("float32")
            batches.append((rng.integers(0, 2, (20, 3)).astype("float32"),
                            scores * 2 if kind == "logits" else 1 / (1 + np.exp(-scores)),
                            rng.random(20).astype("float32") if weighted else None))
        elif kind == "classes":
            logits = rng.standard_normal((20, 5)).astype("float32")
            batches.append((np.eye(5, dtype="float32")[rng.integers(0, 5, 20)],
                            np.exp(logits) / np.exp(logits).sum(-1, keepdims=True),
                            rng.random(20).astype("float32") if weighted else None))
        else:
            labels = rng.integers(0, 4, (8, 6, 6))
            labels[rng.random((8, 6, 6)) < 0.05] = 255
            scores = rng.random((8, 6, 6, 4)).astype("float32")
            weights = (rng.random((8, 6, 6)) * 3).astype("float32") if kind == "fractional" else \
                rng.integers(0, 3, (8, 6, 6)).astype("float32")
            target = np.eye(4, dtype="float32")[np.minimum(labels, 3)] if kind == "one_hot" else labels
            batches.append((target, scores, weights if weighted else None))
    return batches


def build_confusion_metrics(keras):
    """``keras3_confusion_metrics.json``: each CONFUSION_METRIC_CASES metric's name, config and result (a number,
    or a list for several thresholds) over its three batches. For sparse segmentation metrics the predictions
    given are the scores' argmax."""
    rng = np.random.default_rng(53)
    kinds = ("binary", "classes", "logits", "scores", "segmentation", "fractional", "one_hot")
    data = {kind: confusion_batches(kind, rng) for kind in kinds}
    cases = []
    for kind, name, arguments in CONFUSION_METRIC_CASES:
        metric = getattr(keras.metrics, name)(**arguments)
        for y_true, y_pred, weight in data[kind]:
            sparse_prediction = kind in ("segmentation", "fractional") and arguments.get("sparse_y_pred", True)
            metric.update_state(y_true, np.argmax(y_pred, -1) if sparse_prediction else y_pred, sample_weight=weight)
        result = np.asarray(keras.ops.convert_to_numpy(metric.result()), np.float64)
        config = {key: value for key, value in metric.get_config().items() if key != "dtype"}
        cases.append({"kind": kind, "class_name": name, "arguments": arguments, "name": metric.name,
                      "config": config, "result": result.tolist()})
    batches = {kind: [[part if part is None else np.asarray(part).tolist() for part in batch] for batch in value]
               for kind, value in data.items()}
    with open("keras3_confusion_metrics.json", "w") as file:
        json.dump({"keras_version": keras.__version__, "batches": batches, "cases": cases}, file)


#: (case, Keras loss class, its arguments) of keras3_overlap_losses.npz
OVERLAP_LOSS_CASES = [("dice_batch", "Dice", {}), ("dice_images", "Dice", {"axis": [1, 2, 3]}),
                      ("dice_maps", "Dice", {"axis": [1, 2], "reduction": "sum"}),
                      ("tversky_batch", "Tversky", {"alpha": 0.7, "beta": 0.3}),
                      ("tversky_images", "Tversky", {"alpha": 0.2, "beta": 0.8, "axis": [1, 2, 3]}),
                      ("tversky_none", "Tversky", {"axis": [1, 2, 3], "reduction": "none"})]


def segmentation_model(keras):
    """A tiny segmenter: two convolutions to per-pixel class probabilities of 3 classes."""
    layers = keras.layers
    return keras.Sequential([keras.Input((6, 6, 2)), layers.Conv2D(4, 3, padding="same", activation="relu"),
                             layers.Conv2D(3, 1, activation="softmax")])


def build_overlap_losses(keras):
    """``keras3_overlap_losses.npz``: each OVERLAP_LOSS_CASES loss of one-hot maps and sigmoid maps, unweighted and
    weighted per sample; and segmentation_model() trained by Keras with Dice(axis=(1, 2, 3)) and OneHotMeanIoU:
    its first weights, its weights after one epoch (batch 4, no shuffle) and evaluate's [loss, iou]."""
    rng = np.random.default_rng(59)
    y_true = np.eye(3, dtype="float32")[rng.integers(0, 3, (5, 6, 6))]
    logits = rng.standard_normal((5, 6, 6, 3)).astype("float32")
    y_pred = 1 / (1 + np.exp(-logits))          # not summing to 1 per pixel: Tversky's alpha and beta then differ
    weights = rng.random(5).astype("float32")
    record = {"y_true": y_true, "y_pred": y_pred, "weights": weights}
    for case, name, arguments in OVERLAP_LOSS_CASES:
        loss = getattr(keras.losses, name)(**arguments)
        record[f"{case}_plain"] = keras.ops.convert_to_numpy(loss(y_true, y_pred))
        if "axis" not in arguments or len(arguments["axis"]) == 3:      # Keras cannot weight (5, 3) values by (5,)
            record[f"{case}_weighted"] = keras.ops.convert_to_numpy(loss(y_true, y_pred, sample_weight=weights))
        record[f"{case}_config"] = np.array(json.dumps(loss.get_config()))
    keras.utils.set_random_seed(59)
    model = segmentation_model(keras)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=keras.losses.Dice(axis=(1, 2, 3)),
                  metrics=[keras.metrics.OneHotMeanIoU(num_classes=3)])
    x = rng.standard_normal((12, 6, 6, 2)).astype("float32")
    masks = np.eye(3, dtype="float32")[(x[..., 0] > 0.3).astype(int) + (x[..., 1] > 0.8).astype(int)]
    record.update({"x": x, "masks": masks}, **{f"first_{i}": w for i, w in enumerate(model.get_weights())})
    model.fit(x, masks, epochs=1, batch_size=4, shuffle=False, verbose=0)
    record.update({f"trained_{i}": w for i, w in enumerate(model.get_weights())},
                  evaluate=np.asarray(model.evaluate(x, masks, verbose=0)))
    np.savez("keras3_overlap_losses.npz", **record)


#: (kind of data, Keras metric class, its arguments) of keras3_correlation_metrics.json
CORRELATION_CASES = [("rows", "PearsonCorrelation", {}), ("rows", "ConcordanceCorrelation", {}),
                     ("column", "PearsonCorrelation", {}), ("column", "ConcordanceCorrelation", {}),
                     ("rows", "PearsonCorrelation", {"axis": 0}), ("rows", "ConcordanceCorrelation", {"axis": 0}),
                     ("rows", "Sum", {}), ("column", "Sum", {})]


def build_correlation_metrics(keras):
    """``keras3_correlation_metrics.json``: each CORRELATION_CASES metric over three batches, the second
    weighted where Keras can weight the values (per sample): 'rows' (targets and predictions (16, 5), related),
    'column' (one value per sample, (16,)). Sum is given the predictions."""
    rng = np.random.default_rng(61)
    data = {}
    for kind, shape in (("rows", (16, 5)), ("column", (16,))):
        batches = []
        for index in range(3):
            y_true = rng.standard_normal(shape).astype("float32")
            y_pred = (0.7 * y_true + 0.5 * rng.standard_normal(shape) + 0.2).astype("float32")
            batches.append((y_true, y_pred, rng.random(16).astype("float32") if index == 1 else None))
        data[kind] = batches
    cases = []
    for kind, name, arguments in CORRELATION_CASES:
        metric = getattr(keras.metrics, name)(**arguments)
        per_sample = name == "Sum" or (kind == "rows" and "axis" not in arguments)
        for y_true, y_pred, weight in data[kind]:
            weight = weight if per_sample else None      # one value per batch or per column: Keras cannot weight
            if name == "Sum":
                metric.update_state(y_pred, sample_weight=weight)
            else:
                metric.update_state(y_true, y_pred, sample_weight=weight)
        cases.append({"kind": kind, "class_name": name, "arguments": arguments, "name": metric.name,
                      "result": float(keras.ops.convert_to_numpy(metric.result()))})
    batches = {kind: [[part if part is None else np.asarray(part).tolist() for part in batch] for batch in value]
               for kind, value in data.items()}
    with open("keras3_correlation_metrics.json", "w") as file:
        json.dump({"keras_version": keras.__version__, "batches": batches, "cases": cases}, file)


def minimal_cell_class(keras):
    """Keras's guide's custom cell (h = x K + h' R), registered as 'rnn_tests>MinimalRNNCell'."""
    @keras.saving.register_keras_serializable(package="rnn_tests")
    class MinimalRNNCell(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="uniform", name="kernel")
            self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), initializer="uniform",
                                                    name="recurrent_kernel")

        def call(self, inputs, states):
            output = keras.ops.matmul(inputs, self.kernel) + keras.ops.matmul(states[0], self.recurrent_kernel)
            return output, [output]

        def get_config(self):
            return {**super().get_config(), "units": self.units}
    return MinimalRNNCell


def rnn_cell_models(keras):
    """{name: (model, its inputs' kind)}: RNN over each cell: an LSTMCell classifier; a masked stack of a
    SimpleRNNCell and a GRUCell (reset_after=False) going backwards; a GRUCell with return_state feeding its state
    on; and the guide's custom cell."""
    layers = keras.layers
    lstm = keras.Sequential([keras.Input((6, 4)), layers.RNN(layers.LSTMCell(5)),
                             layers.Dense(3, activation="softmax")])
    tokens = keras.Input((7,), dtype="int32")
    stacked = layers.RNN([layers.SimpleRNNCell(4), layers.GRUCell(3, reset_after=False)], return_sequences=True,
                         go_backwards=True)(layers.Embedding(12, 5, mask_zero=True)(tokens))
    masked = keras.Model(tokens, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling1D()(stacked)))
    sequence = keras.Input((6, 4))
    out, state = layers.RNN(layers.GRUCell(4), return_state=True, return_sequences=True)(sequence)
    joined = layers.Concatenate()([layers.GlobalAveragePooling1D()(out), state])
    with_state = keras.Model(sequence, layers.Dense(3, activation="softmax")(joined))
    custom = keras.Sequential([keras.Input((6, 4)), layers.RNN(minimal_cell_class(keras)(4)),
                               layers.Dense(3, activation="softmax")])
    return {"lstm": (lstm, "floats"), "masked": (masked, "tokens"), "with_state": (with_state, "floats"),
            "custom": (custom, "floats")}


def build_rnn_cells(keras):
    """``keras3_rnn_<name>.keras`` and ``keras3_rnn_cells.npz``: each rnn_cell_models() model after one epoch,
    its predictions, evaluate's [loss, accuracy] and its weights after one more epoch of Keras's training (no
    shuffle)."""
    rng = np.random.default_rng(67)
    x = {"floats": rng.standard_normal((16, 6, 4)).astype("float32"), "tokens": padded_tokens(rng, 16, 7)}
    y = rng.integers(0, 3, 16)
    record = {"floats": x["floats"], "tokens": x["tokens"], "y": y}
    keras.utils.set_random_seed(67)
    for name, (model, kind) in rnn_cell_models(keras).items():
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x[kind], y, epochs=1, batch_size=8, verbose=0)
        model.save(f"keras3_rnn_{name}.keras")
        record.update({f"{name}_predictions": model.predict(x[kind], verbose=0),
                       f"{name}_evaluate": np.asarray(model.evaluate(x[kind], y, verbose=0))})
        model.fit(x[kind], y, epochs=1, batch_size=8, shuffle=False, verbose=0)
        record.update({f"{name}_trained_{i}": w for i, w in enumerate(model.get_weights())})
    np.savez("keras3_rnn_cells.npz", **record)


def grouped_conv_models(keras):
    """{name: (model, input shape)}: grouped convolutions (ResNeXt's blocks, grouped 1-D filters)."""
    layers = keras.layers
    images = keras.Sequential([keras.Input((7, 7, 4)), layers.Conv2D(6, 3, groups=2, activation="relu"),
                               layers.Conv2D(6, 1, groups=3, padding="same", dilation_rate=1),
                               layers.Conv2D(4, 2, strides=2, groups=2, use_bias=False),
                               layers.GlobalAveragePooling2D(), layers.Dense(3, activation="softmax")])
    sequences = keras.Sequential([keras.Input((9, 6)), layers.Conv1D(6, 3, groups=3, padding="causal",
                                                                     dilation_rate=2, activation="tanh"),
                                  layers.Conv1D(4, 2, groups=2), layers.Flatten(),
                                  layers.Dense(3, activation="softmax")])
    return {"images": (images, (16, 7, 7, 4)), "sequences": (sequences, (16, 9, 6))}


def build_conv_groups(keras):
    """``keras3_conv_groups_<name>.keras`` and ``keras3_conv_groups.npz``: each grouped_conv_models() model after
    one epoch, its inputs, predictions, evaluate's [loss, accuracy] and weights after one more epoch (no
    shuffle)."""
    rng = np.random.default_rng(71)
    y = rng.integers(0, 3, 16)
    record = {"y": y}
    keras.utils.set_random_seed(71)
    for name, (model, shape) in grouped_conv_models(keras).items():
        x = rng.standard_normal(shape).astype("float32")
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        model.save(f"keras3_conv_groups_{name}.keras")
        record.update({f"{name}_x": x, f"{name}_predictions": model.predict(x, verbose=0),
                       f"{name}_evaluate": np.asarray(model.evaluate(x, y, verbose=0))})
        model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
        record.update({f"{name}_trained_{i}": w for i, w in enumerate(model.get_weights())})
    np.savez("keras3_conv_groups.npz", **record)


#: (case, equation, output_shape, bias_axes, activation, input shape) of keras3_einsum_dense.npz
EINSUM_DENSE_CASES = [("dense", "ab,bc->ac", 4, "c", None, (3, 5)),
                      ("sequence", "abc,cd->abd", (None, 4), "d", "relu", (3, 6, 5)),
                      ("heads", "abc,cde->abde", (None, 2, 3), "de", None, (3, 6, 5)),
                      ("heads_no_bias", "abc,cde->abde", (6, 2, 3), None, "tanh", (3, 6, 5)),
                      ("left_elided", "...b,bc->...c", 4, "c", None, (3, 2, 6, 5)),
                      ("right_elided", "ab...,bc->ac...", (4, None), "c", None, (3, 5, 6)),
                      ("output_heads", "abcd,cde->abe", (None, 7), "e", None, (3, 6, 2, 3))]


def einsum_dense_model(keras):
    """A Transformer-style projection stack: EinsumDense to heads, back to features, pooled, classified."""
    layers = keras.layers
    inputs = keras.Input((6, 5))
    heads = layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 4), bias_axes="de")(inputs)
    merged = layers.EinsumDense("abcd,cde->abe", output_shape=(None, 5), bias_axes="e", activation="relu")(heads)
    pooled = layers.GlobalAveragePooling1D()(merged)
    return keras.Model(inputs, layers.EinsumDense("ab,bc->ac", output_shape=3, bias_axes="c",
                                                  activation="softmax")(pooled))


def build_einsum_dense(keras):
    """``keras3_einsum_dense.npz``: each EINSUM_DENSE_CASES layer's output on random inputs with random weights, and
    its config; einsum_dense_model() saved as ``keras3_einsum_dense.keras`` after one epoch, its predictions,
    evaluate's [loss, accuracy] and its weights after one more epoch (no shuffle)."""
    rng = np.random.default_rng(73)
    record = {}
    for case, equation, output_shape, bias_axes, activation, shape in EINSUM_DENSE_CASES:
        layer = keras.layers.EinsumDense(equation, output_shape=output_shape, bias_axes=bias_axes,
                                         activation=activation)
        x = rng.standard_normal(shape).astype("float32")
        layer.build((None, *shape[1:]))
        layer.set_weights([rng.standard_normal(w.shape).astype("float32") for w in layer.get_weights()])
        record.update({f"{case}_x": x, f"{case}_out": keras.ops.convert_to_numpy(layer(x)),
                       f"{case}_config": np.array(json.dumps(layer.get_config()))})
        record.update({f"{case}_w{i}": w for i, w in enumerate(layer.get_weights())})
    keras.utils.set_random_seed(73)
    model = einsum_dense_model(keras)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = rng.standard_normal((16, 6, 5)).astype("float32"), rng.integers(0, 3, 16)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save("keras3_einsum_dense.keras")
    record.update(x=x, y=y, predictions=model.predict(x, verbose=0),
                  evaluate=np.asarray(model.evaluate(x, y, verbose=0)))
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    record.update({f"trained_{i}": w for i, w in enumerate(model.get_weights())})
    np.savez("keras3_einsum_dense.npz", **record)


#: every Keras 3 activation nnengine has (sparsemax and threshold, which needs two arguments, aside)
ACTIVATION_NAMES = ("relu", "leaky_relu", "relu6", "softmax", "celu", "elu", "selu", "softplus", "softsign",
                    "squareplus", "soft_shrink", "sparse_plus", "silu", "gelu", "glu", "tanh", "tanh_shrink", "sigmoid",
                    "sparse_sigmoid", "exponential", "hard_sigmoid", "hard_silu", "hard_tanh", "hard_shrink", "linear",
                    "mish", "log_softmax", "log_sigmoid", "swish", "hard_swish")

#: (name, Keras loss config, kind of data in loss_batches()) for the losses recorded one batch at a time
LOSS_CASES = [
    ("hinge_01", {"class_name": "Hinge", "config": {}}, "binary_scores"),
    ("hinge_pm1", {"class_name": "Hinge", "config": {}}, "signed_scores"),
    ("squared_hinge", {"class_name": "SquaredHinge", "config": {}}, "binary_scores"),
    ("categorical_hinge", {"class_name": "CategoricalHinge", "config": {}}, "classes"),
    ("mape", {"class_name": "MeanAbsolutePercentageError", "config": {}}, "values"),
    ("msle", {"class_name": "MeanSquaredLogarithmicError", "config": {}}, "values"),
    ("binary_focal", {"class_name": "BinaryFocalCrossentropy", "config": {}}, "binary"),
    ("binary_focal_balanced", {"class_name": "BinaryFocalCrossentropy", "config": {
        "apply_class_balancing": True, "alpha": 0.4, "gamma": 1.5, "label_smoothing": 0.1}}, "binary"),
    ("binary_focal_logits", {"class_name": "BinaryFocalCrossentropy", "config": {"from_logits": True}},
     "binary_scores"),
    ("categorical_focal", {"class_name": "CategoricalFocalCrossentropy", "config": {}}, "classes"),
    ("categorical_focal_logits", {"class_name": "CategoricalFocalCrossentropy", "config": {
        "from_logits": True, "gamma": 3.0, "alpha": 0.5, "label_smoothing": 0.2}}, "class_scores"),
]


def loss_batches(rng):
    """{kind: (y_true, y_pred)} of 12 samples: 0/1 or -1/+1 targets with raw scores, 0/1 targets with
    probabilities, one-hot rows with softmax probabilities or raw scores, and regression values (zeros and
    negatives among the targets)."""
    binary = rng.integers(0, 2, (12, 3)).astype("float32")
    scores = rng.standard_normal((12, 3)).astype("float32") * 2
    one_hot = np.eye(4, dtype="float32")[rng.integers(0, 4, 12)]
    class_scores = rng.standard_normal((12, 4)).astype("float32") * 2
    values = rng.standard_normal((12, 3)).astype("float32") * 2
    values[::5] = 0
    return {"binary_scores": (binary, scores), "signed_scores": (2 * binary - 1, scores),
            "binary": (binary, 1 / (1 + np.exp(-scores))), "classes": (one_hot, np.exp(class_scores) / np.exp(
                class_scores).sum(-1, keepdims=True)), "class_scores": (one_hot, class_scores),
            "values": (values, rng.standard_normal((12, 3)).astype("float32") * 2)}


def function_models(keras):
    """{name: (model, loss config, metric[, optimizer config])}: small models whose hidden activation, loss or
    optimizer Keras 3 added."""
    layers = keras.layers

    def mlp(activation, outputs, output_activation, initializer="glorot_uniform"):
        return keras.Sequential([keras.Input((5,)), layers.Dense(8, activation=activation,
                                                                 kernel_initializer=initializer),
                                 layers.Dense(outputs, activation=output_activation)])
    return {"hinge": (mlp("selu", 1, "linear", "lecun_normal"), "hinge", "binary_accuracy"),
            "squared_hinge": (mlp("celu", 2, "tanh"), "squared_hinge", "mae"),
            "categorical_hinge": (mlp("relu6", 3, "linear"), "categorical_hinge", "categorical_accuracy"),
            "categorical_focal": (mlp("mish", 3, "softmax"), "categorical_focal_crossentropy", "categorical_accuracy"),
            "binary_focal": (mlp("hard_silu", 2, "sigmoid"), {"class_name": "BinaryFocalCrossentropy", "config": {
                "apply_class_balancing": True, "gamma": 1.0}}, "binary_accuracy"),
            "msle": (mlp("softsign", 2, "softplus"), "msle", "mape"),
            "adamax": (mlp("relu", 3, "softmax"), "categorical_crossentropy", "categorical_accuracy",
                       {"class_name": "Adamax", "config": {"learning_rate": 0.02, "beta_2": 0.99}}),
            "nadam": (mlp("relu", 3, "softmax"), "categorical_crossentropy", "categorical_accuracy",
                      {"class_name": "Nadam", "config": {"learning_rate": 0.02, "beta_1": 0.85}}),
            "lion": (mlp("tanh", 3, "softmax"), "categorical_crossentropy", "categorical_accuracy",
                     {"class_name": "Lion", "config": {"learning_rate": 0.003, "beta_2": 0.95, "weight_decay": 0.05}}),
            "adadelta": (mlp("elu", 3, "softmax"), "categorical_crossentropy", "categorical_accuracy",
                         {"class_name": "Adadelta", "config": {"learning_rate": 0.5, "rho": 0.9}}),
            "ftrl": (mlp("sigmoid", 3, "softmax"), "categorical_crossentropy", "categorical_accuracy",
                     {"class_name": "Ftrl", "config": {"learning_rate": 0.1, "l1_regularization_strength": 0.002,
                                                       "l2_regularization_strength": 0.01, "beta": 0.1,
                                                       "l2_shrinkage_regularization_strength": 0.01}})}


def function_targets(rng, name):
    """Targets of 24 samples for function_models()[name]."""
    if name in ("hinge", "binary_focal"):
        return rng.integers(0, 2, (24, 1 if name == "hinge" else 2)).astype("float32")
    if name == "squared_hinge":
        return (2 * rng.integers(0, 2, (24, 2)) - 1).astype("float32")
    if name in ("categorical_hinge", "categorical_focal", "adamax", "nadam", "lion", "adadelta", "ftrl"):
        return np.eye(3, dtype="float32")[rng.integers(0, 3, 24)]
    return np.abs(rng.standard_normal((24, 2))).astype("float32") * 3


def build_functions(keras):
    """``keras3_functions.npz``: every ACTIVATION_NAMES activation on a grid; each LOSS_CASES loss on its batch
    (the reduced loss, the per-sample losses and a sample-weighted loss); and for each of function_models() the
    record_one_epoch of it on random inputs."""
    keras.utils.set_random_seed(17)
    rng = np.random.default_rng(17)
    grid = np.concatenate([np.linspace(-8, 8, 57), [-30, 30, 0, -1, 1, -3, 3, 6, -0.5, 0.5, 2.5]]).astype("float32")
    record = {"grid": grid.reshape(-1, 4)}
    for name in ACTIVATION_NAMES:
        record[f"activation_{name}"] = np.asarray(keras.activations.get(name)(record["grid"]))
    batches, weights = loss_batches(rng), rng.random(12).astype("float32")
    record.update({f"batch_{kind}_{i}": part for kind, pair in batches.items() for i, part in enumerate(pair)})
    record["loss_weights"] = weights
    record["loss_cases"] = np.asarray(json.dumps(LOSS_CASES))
    for name, config, kind in LOSS_CASES:
        y_true, y_pred = batches[kind]
        loss = keras.losses.get(config)
        per_sample = keras.losses.get({**config, "config": {**config["config"], "reduction": "none"}})
        record[f"loss_{name}"] = np.asarray([float(loss(y_true, y_pred)),
                                             float(loss(y_true, y_pred, sample_weight=weights))])
        record[f"loss_{name}_none"] = np.asarray(per_sample(y_true, y_pred))
    x = rng.standard_normal((24, 5)).astype("float32")
    record["x"] = x
    for name, (model, loss, metric, *optimizer) in function_models(keras).items():
        record_one_epoch(keras, model, name, x, function_targets(rng, name), record, loss, metric, *optimizer)
    np.savez("keras3_functions.npz", **record)


def noise_layer_model(keras):
    """A sequence model through Keras's activation, normalization and noise layers (noise only in training)."""
    layers = keras.layers
    inputs = keras.Input((6, 4))
    x = layers.Dense(5)(inputs)
    x = layers.PReLU(alpha_initializer=keras.initializers.RandomUniform(-0.5, 0.5, seed=3), shared_axes=[1])(x)
    x = layers.SpatialDropout1D(0.3)(layers.GaussianNoise(0.2)(x))
    x = layers.ELU(alpha=0.7)(layers.Dense(5)(x))
    x = layers.UnitNormalization()(layers.GaussianDropout(0.25)(x))
    x = layers.Dropout(0.2, noise_shape=(None, 1, 5))(layers.ActivityRegularization(l1=0.01, l2=0.02)(x))
    return keras.Model(inputs, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling1D()(x)))


def build_noise_layers(keras):
    """``keras3_noise_layers.keras`` and ``.npz``: noise_layer_model() saved by Keras, its predictions and evaluate's
    [loss, accuracy] on random inputs (the activity penalty is in that loss)."""
    keras.utils.set_random_seed(19)
    rng = np.random.default_rng(19)
    model = noise_layer_model(keras)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = rng.standard_normal((16, 6, 4)).astype("float32"), rng.integers(0, 3, 16)
    np.savez("keras3_noise_layers.npz", x=x, y=y, predictions=model.predict(x, verbose=0),
             evaluate=np.asarray(model.evaluate(x, y, verbose=0)))
    model.save("keras3_noise_layers.keras")


def backup_model(keras):
    """The small regression MLP whose training backup_and_restore() interrupts and resumes."""
    layers = keras.layers
    return keras.Sequential([keras.Input((5,)), layers.Dense(4, activation="relu"), layers.Dense(2)])


def build_backup(keras):
    """``keras3_backup/`` and ``keras3_backup.npz``: the directory Keras's BackupAndRestore left when a fit of
    backup_model() (Adam(0.01), mse, 5 epochs, no shuffle) was interrupted at the start of epoch 3, and what
    Keras then did with it: a fresh model's fit with the callback, resumed from that directory (a copy), gives
    these losses (epochs 3 and 4) and final weights. The npz also holds the weights of the backup."""
    import shutil

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                raise RuntimeError("interrupted")

    rng = np.random.default_rng(23)
    x, y = rng.standard_normal((40, 5)).astype("float32"), rng.standard_normal((40, 2)).astype("float32")
    shutil.rmtree("keras3_backup", ignore_errors=True)
    keras.utils.set_random_seed(23)
    model = backup_model(keras)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    backup = keras.callbacks.BackupAndRestore("keras3_backup", delete_checkpoint=False)
    try:
        model.fit(x, y, epochs=5, batch_size=8, shuffle=False, verbose=0, callbacks=[backup, Interrupt()])
    except RuntimeError:
        pass
    shutil.copytree("keras3_backup", "keras3_backup_resume")
    resumed = backup_model(keras)
    resumed.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    history = resumed.fit(x, y, epochs=5, batch_size=8, shuffle=False, verbose=0,
                          callbacks=[keras.callbacks.BackupAndRestore("keras3_backup_resume")])
    np.savez("keras3_backup.npz", x=x, y=y, losses=np.asarray(history.history["loss"]),
             **{f"backup_{i}": w for i, w in enumerate(model.get_weights())},
             **{f"resumed_{i}": w for i, w in enumerate(resumed.get_weights())})


KERAS3_MODES = {"archives": build_and_save_archives, "recurrent": build_and_save_recurrent,
                "bidirectional": build_and_save_bidirectional, "time_distributed": build_and_save_time_distributed,
                "functional_graph": build_and_save_functional_graph, "subclassed": build_and_save_subclassed,
                "multi_output": build_and_save_multi_output, "loss_metrics": build_loss_metrics,
                "nested": build_and_save_nested, "masked": build_and_save_masked,
                "attention": build_and_save_attention, "states": build_and_save_states, "functions": build_functions,
                "noise_layers": build_noise_layers, "bidirectional_states": build_and_save_bidirectional_states,
                "conv_transpose": build_conv_transpose, "separable": build_separable,
                "masked_functional": build_masked_functional, "adamax": build_and_save_adamax,
                "nadam": build_and_save_nadam, "augmentation": build_augmentation,
                "category_encoding": build_category_encoding, "backup": build_backup,
                "group_rms": build_group_rms, "sequence_attention": build_sequence_attention,
                "confusion_metrics": build_confusion_metrics, "overlap_losses": build_overlap_losses,
                "correlation_metrics": build_correlation_metrics, "rnn_cells": build_rnn_cells,
                "conv_groups": build_conv_groups, "einsum_dense": build_einsum_dense,
                "keras3": lambda keras: build_and_save(keras, f"keras{keras.__version__.split('.')[0]}_sequential")}


if __name__ == "__main__":
    if sys.argv[1] in KERAS3_MODES:
        import keras
        KERAS3_MODES[sys.argv[1]](keras)
    else:
        import tensorflow as tf
        build_and_save(tf.keras, "tf_keras2_sequential")
