"""Train on real data: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes).

Needs the examples extra (``pip install -e ".[examples]"``: scikit-learn for the
data, matplotlib for the chart). A Keras-style MLP (64 -> 128 relu -> 64 relu ->
10 softmax, Adam, integer labels with sparse categorical cross-entropy) trains
on 80% of the images, holds out the last 10% of those for validation, and is
scored on the other 20%. It prints the test accuracy (at least 0.97) and saves
its training curves as a PNG.

    python examples/digits.py [--epochs 40] [--plot digits_training.png]
"""
import argparse
import importlib.util
import sys

import numpy as np

import nnengine as nn

#: what this example needs beyond nnengine, and how to get it
EXTRA_HINT = 'pip install -e ".[examples]"'


def missing_modules(plot):
    """The optional modules this run needs that are not installed (matplotlib only for the chart)."""
    wanted = ["sklearn"] + (["matplotlib"] if plot else [])
    return [name for name in wanted if importlib.util.find_spec(name) is None]


def load_data(seed=0):
    """(x_train, y_train), (x_test, y_test): pixels scaled to [0, 1], a stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.2, random_state=seed,
                                                        stratify=digits.target)
    return (x_train, y_train), (x_test, y_test)


def build_model():
    """The MLP, compiled with Adam and sparse categorical cross-entropy."""
    model = nn.Sequential([
        nn.Input(shape=(64,)),
        nn.layers.Dense(128, activation="relu"),
        nn.layers.Dense(64, activation="relu"),
        nn.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def plot_history(history, path):
    """Save loss and accuracy per epoch (training and validation) as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history.history["loss"]) + 1)
    for axis, key in ((left, "loss"), (right, "accuracy")):
        axis.plot(epochs, history.history[key], label="training")
        axis.plot(epochs, history.history[f"val_{key}"], label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(key)
        axis.legend()
    figure.suptitle("nnengine on scikit-learn's 8x8 digits")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(argv, description, script, build, sample_shape, epochs, plot):
    """Parse the command line, train ``build()`` on the digits seen as ``sample_shape``, print and return the
    test accuracy, save the curves as a PNG (the shared body of this example and digits_cnn.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--plot", default=plot)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)
    missing = missing_modules(args.plot)
    if missing:
        names = ", ".join("scikit-learn" if m == "sklearn" else m for m in missing)
        print(f"examples/{script} needs {names}, from the examples extra: {EXTRA_HINT}", file=sys.stderr)
        raise SystemExit(2)
    nn.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_data(args.seed)
    model = build()
    history = model.fit(x_train.reshape(-1, *sample_shape), y_train, epochs=args.epochs, batch_size=32,
                        validation_split=0.1, verbose=args.verbose)
    loss, accuracy = model.evaluate(x_test.reshape(-1, *sample_shape), y_test, verbose=0)
    print(f"Test loss: {loss:.4f}  Test accuracy: {accuracy:.4f}")
    if args.plot:
        plot_history(history, args.plot)
        print(f"Training curves saved to {args.plot}")
    return accuracy


def main(argv=None):
    """The MLP on the 64 pixels of each digit."""
    return run(argv, __doc__.splitlines()[0], "digits.py", build_model, (64,), 40, "digits_training.png")


if __name__ == "__main__":
    main()
