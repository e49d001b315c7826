"""Training steps of models that are not a plain stack, nnengine against PyTorch CPU in one run.

    python -m benchmarks.model_apis [--repeats 7] [--out FOLDER]

- ``residual_functional``: 32 inputs, Dense 64 relu, four residual blocks h + Dense 64 relu (h), Dense 10
  softmax, written with the functional API (keras.Model(inputs, outputs), merge layer Add);
- ``residual_subclassed``: the same network as a subclass of keras.Model (the skips written in call);
- ``text_lstm``: word ids (12 per sample, 60 words) -> Embedding 16 -> LSTM 32 -> Dense 2 softmax, whose step
  compiles since the trainer checks the indices on the host.
- ``dropout_mlp``: 32 inputs, Dense 64 relu, Dropout 0.3, Dense 64 relu, Dropout 0.3, Dense 10 softmax: its
  step compiles with the masks drawn before it (nnengine/dropout_masks.py); PyTorch draws its masks in the step.

Batch 64, Adam, sparse categorical cross-entropy. PyTorch runs the same networks as modules (its
CrossEntropyLoss on logits) in eager CPU steps with as many threads as numba. Each step is forward, loss,
backward and Adam on a batch in memory, the median of ``repeats`` timings of several steps; nnengine's model
is warmed up past the point where a compiled plan is lowered (``capture.LOWER_AFTER_REPLAYS``). Writes
benchmarks/results/model_apis.{json,md}.
"""
import numpy as np

from .common import command_line
from .training import steps_against_torch, steps_table, torch_training_step, torch_version

MODELS = ("residual_functional", "residual_subclassed", "text_lstm", "dropout_mlp")
#: the rate of each Dropout of ``dropout_mlp``
DROPOUT = 0.3
#: (batch, features, width, blocks, classes) of the residual networks; (vocabulary, length, embedding, units)
RESIDUAL, TEXT = (64, 32, 64, 4, 10), (60, 12, 16, 32)


def _batch(name):
    rng = np.random.default_rng(0)
    batch, features, *_, classes = RESIDUAL
    if name == "text_lstm":
        vocabulary, length, *_ = TEXT
        return rng.integers(0, vocabulary, (batch, length)).astype(np.int32), rng.integers(0, 2, batch)
    return rng.standard_normal((batch, features)).astype(np.float32), rng.integers(0, classes, batch)


def nnengine_model(name):
    """The Keras-style model ``name``, compiled with Adam and sparse cross-entropy."""
    import nnengine as nn
    keras = nn.keras
    nn.utils.set_random_seed(0)
    _, features, width, blocks, classes = RESIDUAL
    if name == "residual_functional":
        inputs = keras.Input((features,))
        hidden = keras.layers.Dense(width, activation="relu")(inputs)
        for _ in range(blocks):
            hidden = keras.layers.Add()([hidden, keras.layers.Dense(width, activation="relu")(hidden)])
        model = keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(hidden))
    elif name == "residual_subclassed":
        model = _subclassed_residual(keras)(width, blocks, classes)
        model.build((None, features))
    elif name == "dropout_mlp":
        model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(width, activation="relu"),
                                  keras.layers.Dropout(DROPOUT), keras.layers.Dense(width, activation="relu"),
                                  keras.layers.Dropout(DROPOUT), keras.layers.Dense(classes, activation="softmax")])
    else:
        vocabulary, length, embedding, units = TEXT
        model = keras.Sequential([keras.Input((length,), dtype="int32"), keras.layers.Embedding(vocabulary, embedding),
                                  keras.layers.LSTM(units), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _subclassed_residual(keras):
    class Residual(keras.Model):
        def __init__(self, width, blocks, classes):
            super().__init__()
            self.first = keras.layers.Dense(width, activation="relu")
            self.blocks = [keras.layers.Dense(width, activation="relu") for _ in range(blocks)]
            self.classes = keras.layers.Dense(classes, activation="softmax")

        def call(self, x):
            hidden = self.first(x)
            for block in self.blocks:
                hidden = hidden + block(hidden)
            return self.classes(hidden)
    return Residual


def nnengine_step(name):
    """``train_on_batch`` of the nnengine model, warmed up until its plan runs lowered (where it can)."""
    from nnengine import capture
    model = nnengine_model(name)
    x, y = _batch(name)
    for _ in range(capture.LOWER_AFTER_REPLAYS + 2):
        model.train_on_batch(x, y)
    return lambda: model.train_on_batch(x, y)


def torch_model(name):
    """The same network as a PyTorch module, returning logits."""
    import torch
    torch.manual_seed(0)
    _, features, width, blocks, classes = RESIDUAL
    if name == "text_lstm":
        vocabulary, _, embedding, units = TEXT

        class Text(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.embedding = torch.nn.Embedding(vocabulary, embedding)
                self.lstm = torch.nn.LSTM(embedding, units, batch_first=True)
                self.head = torch.nn.Linear(units, 2)

            def forward(self, ids):
                return self.head(self.lstm(self.embedding(ids))[0][:, -1])
        return Text()

    if name == "dropout_mlp":
        return torch.nn.Sequential(torch.nn.Linear(features, width), torch.nn.ReLU(), torch.nn.Dropout(DROPOUT),
                                   torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Dropout(DROPOUT),
                                   torch.nn.Linear(width, classes))

    class Residual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.first = torch.nn.Linear(features, width)
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(width, width) for _ in range(blocks)])
            self.head = torch.nn.Linear(width, classes)

        def forward(self, x):
            hidden = torch.relu(self.first(x))
            for block in self.blocks:
                hidden = hidden + torch.relu(block(hidden))
            return self.head(hidden)
    return Residual()


def torch_step(name):
    """PyTorch eager's CPU step of the same network: forward, loss, backward, Adam."""
    import torch
    x, y = _batch(name)
    inputs = torch.from_numpy(x.astype(np.int64) if name == "text_lstm" else x)
    return torch_training_step(torch_model(name), inputs, torch.from_numpy(y))


def run(repeats=7):
    """Both frameworks' step for each model, in one process."""
    rows = steps_against_torch(MODELS, nnengine_step, torch_step, repeats)
    return {"torch_version": torch_version(), "residual": dict(zip(("batch", "features", "width", "blocks",
                                                                    "classes"), RESIDUAL)),
            "text": dict(zip(("vocabulary", "length", "embedding", "units"), TEXT)), "steps": rows}


def markdown(results):
    """The results as a Markdown table."""
    return steps_table("Functional, subclassed and text models: nnengine (numba CPU) and PyTorch CPU, one run",
                       f"PyTorch {results['torch_version']}. Batch {results['residual']['batch']}; Adam. Medians.",
                       "model", results["steps"], digits=3)


def main(argv=None):
    """``python -m benchmarks.model_apis [--repeats 7] [--out FOLDER]``."""
    return command_line("model_apis", run, markdown, __doc__, argv)


if __name__ == "__main__":
    main()
