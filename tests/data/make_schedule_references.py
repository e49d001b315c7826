"""Record Keras 3's schedules, clipped training runs and a custom-loss fit for the tests (not run by the tests).

tests/test_schedules.py reads the schedules and runs; tests/test_custom_functions.py the custom fit.

    KERAS_BACKEND=torch python tests/data/make_schedule_references.py     # in a venv with keras 3 + torch

Writes keras3_schedules.json: each schedule's config and its values at steps 0..STEPS-1, and for each
training run its optimizer, the starting weights, the data, Keras's per-epoch losses and final weights.
"""
import json
import os
from pathlib import Path

import numpy as np

STEPS = 60
SCHEDULES = [
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=7, decay_rate=0.5)),
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=7, decay_rate=0.5, staircase=True)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=5, decay_rate=0.3)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=5, decay_rate=0.3, staircase=True)),
    ("PiecewiseConstantDecay", dict(boundaries=[5, 20], values=[0.1, 0.05, 0.01])),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=25, end_learning_rate=0.001, power=2.0)),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=25, end_learning_rate=0.001, power=0.5,
                             cycle=True)),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=30, alpha=0.1)),
    ("CosineDecay", dict(initial_learning_rate=0.0, decay_steps=30, warmup_target=0.1, warmup_steps=10)),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=8, t_mul=2.0, m_mul=0.7, alpha=0.05)),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=8, t_mul=1.0, m_mul=0.9)),
]
RUNS = [
    ("Adam", dict(learning_rate=("ExponentialDecay", dict(initial_learning_rate=0.05, decay_steps=4,
                                                           decay_rate=0.7)), clipnorm=0.05)),
    ("SGD", dict(learning_rate=("CosineDecay", dict(initial_learning_rate=0.01, decay_steps=12, warmup_target=0.2,
                                                     warmup_steps=5)), momentum=0.9, global_clipnorm=0.3)),
    ("RMSprop", dict(learning_rate=0.01, clipvalue=0.02)),
    ("Adam", dict(learning_rate=("PiecewiseConstantDecay", dict(boundaries=[6], values=[0.02, 0.002])))),
]


def optimizer(keras, name, config):
    config = dict(config)
    if isinstance(config["learning_rate"], tuple):
        kind, arguments = config["learning_rate"]
        config["learning_rate"] = getattr(keras.optimizers.schedules, kind)(**arguments)
    return getattr(keras.optimizers, name)(**config)


def run(keras, name, config):
    rng = np.random.default_rng(len(name) + len(str(config)))
    x = rng.standard_normal((48, 6)).astype("float32")
    y = rng.integers(0, 3, 48)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    start = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in model.get_weights()]
    model.set_weights(start)
    model.compile(optimizer=optimizer(keras, name, config), loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=4, batch_size=16, shuffle=False, verbose=0)
    return {"optimizer": name, "config": config, "x": x.tolist(), "y": y.tolist(),
            "start": [w.tolist() for w in start], "loss": history.history["loss"],
            "final": [w.tolist() for w in model.get_weights()]}


def custom_loss(ops):
    """A loss and a metric written with keras.ops: what a Keras user writes (the tests define the same ones)."""
    def scaled_huber(y_true, y_pred):
        error = ops.abs(y_pred - y_true)
        quadratic = ops.minimum(error, 0.5)
        return ops.mean(0.5 * ops.square(quadratic) + 0.5 * (error - quadratic), axis=-1) * 3.0

    def rms_error(y_true, y_pred):
        return ops.sqrt(ops.mean(ops.square(y_pred - y_true), axis=-1))
    return scaled_huber, rms_error


def custom_run(keras):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((40, 5)).astype("float32")
    y = rng.standard_normal((40, 2)).astype("float32")
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(2)])
    start = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in model.get_weights()]
    model.set_weights(start)
    loss, metric = custom_loss(keras.ops)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=loss, metrics=[metric])
    history = model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
    return {"x": x.tolist(), "y": y.tolist(), "start": [w.tolist() for w in start], "history": history.history,
            "final": [w.tolist() for w in model.get_weights()], "evaluate": model.evaluate(x, y, verbose=0)}


def more_losses(keras):
    """Keras's Huber, LogCosh, KLDivergence, Poisson and CosineSimilarity on fixed inputs: per sample and reduced."""
    rng = np.random.default_rng(11)
    out = []
    for name, arguments, positive in [("Huber", {"delta": 0.7}, False), ("LogCosh", {}, False),
                                      ("KLDivergence", {}, True), ("Poisson", {}, True),
                                      ("CosineSimilarity", {}, False)]:
        y_true = rng.random((6, 4)).astype("float32") if positive else rng.standard_normal((6, 4)).astype("float32")
        y_pred = rng.random((6, 4)).astype("float32") + 0.05 if positive else \
            rng.standard_normal((6, 4)).astype("float32") * 3
        if name == "KLDivergence":
            y_true, y_pred = y_true / y_true.sum(-1, keepdims=True), y_pred / y_pred.sum(-1, keepdims=True)
        loss = getattr(keras.losses, name)(**arguments)
        per_sample = getattr(keras.losses, name)(reduction=None, **arguments)(y_true, y_pred)
        out.append({"class_name": name, "arguments": arguments, "y_true": y_true.tolist(), "y_pred": y_pred.tolist(),
                    "value": float(keras.ops.convert_to_numpy(loss(y_true, y_pred))),
                    "per_sample": keras.ops.convert_to_numpy(per_sample).tolist(), "name": loss.name})
    return out


def more_metrics(keras):
    """Keras's confusion and top-k metrics over three batches (one sample-weighted): their results."""
    rng = np.random.default_rng(12)
    batches = []
    for index in range(3):
        logits = rng.standard_normal((20, 5)).astype("float32")
        y_pred = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        labels = rng.integers(0, 5, 20)
        y_true = np.eye(5, dtype="float32")[labels]
        weight = rng.random(20).astype("float32") if index == 1 else None
        batches.append((y_true, y_pred, labels, weight))
    cases = [("Precision", {}), ("Precision", {"thresholds": 0.3}), ("Recall", {}), ("Recall", {"thresholds": 0.2}),
             ("AUC", {}), ("AUC", {"num_thresholds": 50}), ("AUC", {"curve": "PR"}),
             ("F1Score", {}), ("F1Score", {"average": "macro"}), ("F1Score", {"average": "micro"}),
             ("F1Score", {"average": "weighted", "threshold": 0.3}), ("TopKCategoricalAccuracy", {"k": 2}),
             ("SparseTopKCategoricalAccuracy", {"k": 3})]
    out = []
    for name, arguments in cases:
        metric = getattr(keras.metrics, name)(**arguments)
        for y_true, y_pred, labels, weight in batches:
            target = labels if name.startswith("Sparse") else y_true
            metric.update_state(target, y_pred, sample_weight=weight)
        result = np.asarray(keras.ops.convert_to_numpy(metric.result()), np.float64)
        out.append({"class_name": name, "arguments": arguments, "result": result.tolist(), "name": metric.name})
    return {"batches": [[t.tolist(), p.tolist(), l.tolist(), None if w is None else w.tolist()]
                        for t, p, l, w in batches], "metrics": out}


def regularized_run(keras):
    """A 3-epoch fit with kernel, bias and activity regularizers: Keras's losses (penalties included) and weights."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((40, 5)).astype("float32")
    y = rng.integers(0, 3, 40)
    model = keras.Sequential([
        keras.Input((5,)),
        keras.layers.Dense(6, activation="relu", kernel_regularizer=keras.regularizers.L2(0.05),
                           bias_regularizer=keras.regularizers.L1(0.02)),
        keras.layers.Dense(4, activation="tanh", activity_regularizer=keras.regularizers.L1L2(l1=0.01, l2=0.03)),
        keras.layers.Dense(3, activation="softmax", kernel_regularizer="l1")])
    start = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in model.get_weights()]
    model.set_weights(start)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5), loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=3, batch_size=10, shuffle=False, verbose=0)
    return {"x": x.tolist(), "y": y.tolist(), "start": [w.tolist() for w in start], "loss": history.history["loss"],
            "final": [w.tolist() for w in model.get_weights()], "evaluate": float(model.evaluate(x, y, verbose=0))}


def weighted_runs(keras):
    """Fits with sample_weight (and weighted validation data) and with class_weight, plus a weighted evaluate."""
    out = []
    for kind in ("sample_weight", "class_weight", "binary_class_weight"):
        rng = np.random.default_rng(14)
        x = rng.standard_normal((36, 5)).astype("float32")
        binary = kind == "binary_class_weight"
        y = (rng.random(36) > 0.5).astype("float32") if binary else np.eye(3, dtype="float32")[rng.integers(0, 3, 36)]
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(6, activation="relu"),
                                  keras.layers.Dense(1 if binary else 3, activation="sigmoid" if binary else "softmax")])
        start = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in model.get_weights()]
        model.set_weights(start)
        model.compile(optimizer=keras.optimizers.Adam(0.03),
                      loss="binary_crossentropy" if binary else "categorical_crossentropy", metrics=["accuracy"])
        weights = rng.random(36).astype("float32") * 2
        class_weight = {0: 0.3, 1: 2.0} if binary else {0: 0.5, 1: 1.5, 2: 3.0}
        arguments = {"sample_weight": weights[:30], "validation_data": (x[30:], y[30:], weights[30:])} \
            if kind == "sample_weight" else {"class_weight": class_weight, "validation_split": 1 / 6}
        history = model.fit(x if kind != "sample_weight" else x[:30], y if kind != "sample_weight" else y[:30],
                            epochs=3, batch_size=8, shuffle=False, verbose=0, **arguments)
        evaluated = model.evaluate(x, y, sample_weight=weights, verbose=0)
        out.append({"kind": kind, "x": x.tolist(), "y": y.tolist(), "weights": weights.tolist(),
                    "class_weight": {str(k): v for k, v in class_weight.items()}, "start": [w.tolist() for w in start],
                    "history": history.history, "final": [w.tolist() for w in model.get_weights()],
                    "evaluate": evaluated})
    return out


def custom_layer_run(keras):
    """A fit through a custom layer written as Keras 3 documents it (the tests define the same class)."""
    class Scale(keras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

        def call(self, inputs):
            return inputs * self.w * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    rng = np.random.default_rng(15)
    x = rng.standard_normal((30, 5)).astype("float32")
    y = rng.integers(0, 3, 30)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(6, activation="tanh"), Scale(1.5),
                              keras.layers.Dense(3, activation="softmax")])
    start = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in model.get_weights()]
    model.set_weights(start)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=3, batch_size=10, shuffle=False, verbose=0)
    return {"x": x.tolist(), "y": y.tolist(), "start": [w.tolist() for w in start], "loss": history.history["loss"],
            "final": [w.tolist() for w in model.get_weights()]}


def constrained_run(keras):
    """A 3-epoch fit with MaxNorm and NonNeg constraints: Keras's losses and final (projected) weights."""
    rng = np.random.default_rng(16)
    x = rng.standard_normal((30, 5)).astype("float32")
    y = rng.integers(0, 3, 30)
    model = keras.Sequential([
        keras.Input((5,)),
        keras.layers.Dense(6, activation="relu", kernel_constraint=keras.constraints.MaxNorm(0.8),
                           bias_constraint=keras.constraints.NonNeg()),
        keras.layers.Dense(3, activation="softmax", kernel_constraint=keras.constraints.MaxNorm(1.2, axis=1))])
    start = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in model.get_weights()]
    model.set_weights(start)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=3, batch_size=10, shuffle=False, verbose=0)
    return {"x": x.tolist(), "y": y.tolist(), "start": [w.tolist() for w in start], "loss": history.history["loss"],
            "final": [w.tolist() for w in model.get_weights()]}


def pydataset_run(keras):
    """A 2-epoch fit on a PyDataset of 4 batches, shuffle=False, then the same batches from a generator."""
    rng = np.random.default_rng(17)
    x = rng.standard_normal((40, 4)).astype("float32")
    y = rng.integers(0, 3, 40)

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return x[index * 10:(index + 1) * 10], y[index * 10:(index + 1) * 10]

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    start = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in model.get_weights()]
    model.set_weights(start)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(Batches(), epochs=2, shuffle=False, verbose=0)
    return {"x": x.tolist(), "y": y.tolist(), "start": [w.tolist() for w in start], "history": history.history,
            "final": [w.tolist() for w in model.get_weights()], "evaluate": model.evaluate(Batches(), verbose=0)}


def main():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    schedules = []
    for kind, arguments in SCHEDULES:
        schedule = getattr(keras.optimizers.schedules, kind)(**arguments)
        values = [float(keras.ops.convert_to_numpy(schedule(step))) for step in range(STEPS)]
        schedules.append({"class_name": kind, "arguments": arguments, "values": values,
                          "config": keras.optimizers.schedules.serialize(schedule)})
    runs = [run(keras, name, config) for name, config in RUNS]
    out = {"keras_version": keras.__version__, "backend": keras.backend.backend(), "schedules": schedules,
           "runs": runs, "custom": custom_run(keras), "losses": more_losses(keras),
           "metrics": more_metrics(keras), "regularized": regularized_run(keras), "weighted": weighted_runs(keras),
           "custom_layer": custom_layer_run(keras), "constrained": constrained_run(keras),
           "pydataset": pydataset_run(keras)}
    (Path(__file__).parent / "keras3_schedules.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main()
