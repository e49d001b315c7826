"""Recurrent training steps, nnengine against PyTorch CPU in one run.

    python -m benchmarks.recurrent [--repeats 7] [--out FOLDER]

Each model reads sequences of 20 steps of 16 features, batch 32: one recurrent layer of 64 units (LSTM, GRU,
SimpleRNN), its last state into Dense 10 softmax; Adam and sparse categorical cross-entropy. The step is
forward, loss, backward and Adam on a batch in memory, the median of ``repeats`` timings of several steps;
nnengine's step is warmed up past the point where a compiled plan is lowered to one numba function
(``capture.LOWER_AFTER_REPLAYS``; at these sizes the sequence arrays come from the reused pool and the plan
keeps its Python replay), PyTorch runs its eager CPU step with as many threads as numba.
PyTorch's cells carry a second bias vector (b_hh) that Keras's LSTM and SimpleRNN do not: 4 * 64 and 64
parameters more, a bias add per step. Writes benchmarks/results/recurrent.{json,md}.
"""
import numpy as np

from .common import command_line
from .training import steps_against_torch, steps_table, torch_training_step, torch_version

#: model name -> (Keras layer class, PyTorch module name); sizes: (batch, steps, features, units)
MODELS = {"lstm": ("LSTM", "LSTM"), "gru": ("GRU", "GRU"), "simple_rnn": ("SimpleRNN", "RNN")}
SIZES = (32, 20, 16, 64)


def _batch(sizes):
    batch, steps, features, _ = sizes
    rng = np.random.default_rng(0)
    return rng.standard_normal((batch, steps, features)).astype(np.float32), rng.integers(0, 10, batch)


def nnengine_model(name, sizes=None):
    """The Keras-style model: the recurrent layer, then Dense 10 softmax; Adam, sparse cross-entropy."""
    import nnengine as nn
    nn.utils.set_random_seed(0)
    _, steps, features, units = sizes or SIZES
    layer = getattr(nn.layers, MODELS[name][0])(units)
    model = nn.Sequential([nn.Input((steps, features)), layer, nn.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def nnengine_step(name, sizes=None):
    """``train_on_batch`` of the nnengine model, warmed up until its plan runs lowered."""
    from nnengine import capture
    model = nnengine_model(name, sizes)
    x, y = _batch(sizes or SIZES)
    for _ in range(capture.LOWER_AFTER_REPLAYS + 2):
        model.train_on_batch(x, y)
    return lambda: model.train_on_batch(x, y)


def torch_model(name, sizes=None):
    """The same model in PyTorch: its recurrent module (batch first), the last step's state into a Linear."""
    import torch
    torch.manual_seed(0)
    _, _, features, units = sizes or SIZES

    class LastState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.recurrent = getattr(torch.nn, MODELS[name][1])(features, units, batch_first=True)
            self.head = torch.nn.Linear(units, 10)

        def forward(self, x):
            return self.head(self.recurrent(x)[0][:, -1])
    return LastState()


def torch_step(name, sizes=None):
    """PyTorch eager's CPU step of the same model: forward, loss, backward, Adam."""
    import torch
    x, y = _batch(sizes or SIZES)
    return torch_training_step(torch_model(name, sizes), torch.from_numpy(x), torch.from_numpy(y))


def run(repeats=7, sizes=None):
    """Both frameworks' step for each model, in one process."""
    sizes = sizes or SIZES
    rows = steps_against_torch(MODELS, lambda name: nnengine_step(name, sizes), lambda name: torch_step(name, sizes),
                               repeats)
    return {"torch_version": torch_version(), "sizes": dict(zip(("batch", "steps", "features", "units"), sizes)),
            "steps": rows}


def markdown(results):
    """The results as a Markdown table."""
    sizes = results["sizes"]
    return steps_table("Recurrent training steps: nnengine (numba CPU) and PyTorch CPU, one run",
                       f"PyTorch {results['torch_version']}. Batch {sizes['batch']}, {sizes['steps']} steps of "
                       f"{sizes['features']} features, {sizes['units']} units, then Dense 10 softmax; Adam. Medians.",
                       "layer", results["steps"])


def main(argv=None):
    """``python -m benchmarks.recurrent [--repeats 7] [--out FOLDER]``."""
    return command_line("recurrent", run, markdown, __doc__, argv)


if __name__ == "__main__":
    main()
