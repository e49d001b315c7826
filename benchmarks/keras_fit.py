"""The document's ``fit`` with nnengine and, when it is installed, with Keras 3 (side by side, same run).

Measures, for the document's model (10 -> 64 relu -> 32 relu -> 10 softmax, Adam,
categorical cross-entropy, accuracy) on 100 random samples, 10 epochs, batch 32,
validation_split=0.2, verbose=0, after warm-up fits (nnengine's in its steady state: every plan lowered to
one compiled function, as after ``LOWER_AFTER_REPLAYS`` replays or with a warm plan cache):

* the median time of the whole ``fit`` for nnengine and for Keras (target: nnengine >= 40x faster);
* the share of nnengine's fit spent inside its training and validation steps
  (target: >= 80%; the rest is batching, metrics, callbacks and logs).

    python -m benchmarks.keras_fit [--repeats 7] [--out FOLDER]
"""
import argparse
import importlib.util
import os
import time

import numpy as np

from .common import median_time, write_results

SAMPLES, EPOCHS, BATCH = 100, 10, 32


def document_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((SAMPLES, 10)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, SAMPLES)]
    return x, y


def build(api):
    """The document's model in ``api`` (nnengine or keras), compiled as the document compiles it."""
    model = api.Sequential([
        api.layers.Dense(units=64, activation="relu", input_shape=(10,)),
        api.layers.Dense(units=32, activation="relu"),
        api.layers.Dense(units=10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def fit_once(model, x, y):
    model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, validation_split=0.2, verbose=0)


def nnengine_share_in_steps(model, x, y, repeats):
    """(median fit seconds, median fraction of it inside Sequential._step)."""
    inside = [0.0]
    step = model._step

    def timed_step(*args, **kwargs):
        start = time.perf_counter()
        try:
            return step(*args, **kwargs)
        finally:
            inside[0] += time.perf_counter() - start

    model._step = timed_step
    runs = []
    for _ in range(repeats):
        inside[0] = 0.0
        start = time.perf_counter()
        fit_once(model, x, y)
        total = time.perf_counter() - start
        runs.append((total, inside[0] / total))
    model._step = step
    runs.sort()
    return runs[len(runs) // 2]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.keras_fit", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=None, help="folder for keras_fit.{json,md} (default benchmarks/results)")
    args = parser.parse_args(argv)
    import nnengine
    from nnengine import capture
    x, y = document_data()
    nnengine.utils.set_random_seed(0)
    model = build(nnengine)
    capture.LOWER_AFTER_REPLAYS = 1         # the steady state: every plan lowered, as with a warm plan cache
    for _ in range(3):                      # warm-up: plans captured, verified and lowered
        fit_once(model, x, y)
    ours, _ = median_time(lambda: fit_once(model, x, y), args.repeats, warmup=1)
    _, share = nnengine_share_in_steps(model, x, y, args.repeats)
    results = {"benchmark": "keras_fit", "setup": f"{SAMPLES} samples, {EPOCHS} epochs, batch {BATCH}, "
               "validation_split 0.2, verbose 0", "device": nnengine.get_default_device(),
               "nnengine_fit_s": ours, "share_in_steps": share}
    rows = [("nnengine fit (median)", f"{ours * 1e3:.1f} ms", ""),
            ("share of fit inside training/validation steps", f"{share:.0%}", "target >= 80%")]
    if importlib.util.find_spec("keras") is not None:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras
        keras.utils.set_random_seed(0)
        keras_model = build(keras)
        fit_once(keras_model, x, y)
        theirs, _ = median_time(lambda: fit_once(keras_model, x, y), args.repeats, warmup=1)
        results.update(keras_version=keras.__version__, keras_backend=keras.backend.backend(),
                       keras_fit_s=theirs, speedup_vs_keras=theirs / ours)
        rows.insert(1, (f"Keras {keras.__version__} ({keras.backend.backend()}) fit (median)",
                        f"{theirs * 1e3:.1f} ms", ""))
        rows.insert(2, ("nnengine speed-up over Keras", f"{theirs / ours:.1f}x", "target >= 40x"))
    else:
        rows.append(("Keras", "not installed: no comparison", ""))
    table = "| measure | value | target |\n|---|---|---|\n" + "".join(f"| {a} | {b} | {c} |\n" for a, b, c in rows)
    markdown = f"# The document's fit\n\n{results['setup']}, device {results['device']}.\n\n{table}"
    paths = write_results("keras_fit", results, markdown, args.out)
    print(markdown)
    print("written:", *paths)
    return results


if __name__ == "__main__":
    main()
