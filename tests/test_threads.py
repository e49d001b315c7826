"""Threads: several threads train and predict at once and get exactly the single-thread results.

The stress runs in a child process: what it guards against (numba's workqueue layer aborting the
process when two threads launch parallel kernels) would otherwise kill pytest itself. The child lowers
``PARALLEL_MIN_ELEMENTS`` and ``PARALLEL_MIN_STREAMING_ELEMENTS`` so that small models take the parallel
kernels too, and mixes them with a model large enough to take one at the shipped thresholds (its tanh
layer's bias + tanh over a million elements when it predicts).
"""
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import nnengine as ne
from nnengine import backends, keras

STRESS = textwrap.dedent("""
    import sys, threading
    import numpy as np
    from nnengine import keras
    from nnengine.kernels.cpu import config

    config.PARALLEL_MIN_ELEMENTS, config.PARALLEL_MIN_STREAMING_ELEMENTS = int(sys.argv[1]), int(sys.argv[2])
    JOBS = [(512, 2048, 256, "tanh"), (10, 64, 32, "relu"), (10, 64, 32, "relu"),   # (features, hidden, batch,
            (64, 256, 128, "relu")]                                                 #  hidden activation)

    def train(job, seed):
        features, hidden, batch, activation = job
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((2 * batch + 3, features)).astype("float32")
        y = keras.utils.to_categorical(rng.integers(0, 10, len(x)), 10)
        model = keras.Sequential([
            keras.layers.Dense(hidden, activation=activation, input_shape=(features,),
                               kernel_initializer=keras.initializers.GlorotUniform(seed)),
            keras.layers.Dense(10, activation="softmax",
                               kernel_initializer=keras.initializers.GlorotUniform(seed + 1))])
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        model.fit(x, y, batch_size=batch, epochs=2, shuffle=False, verbose=0)
        return [*model.get_weights(), model.predict(x, verbose=0, batch_size=len(x))]

    alone = [train(job, seed) for seed, job in enumerate(JOBS)]
    together = [None] * len(JOBS)
    start = threading.Barrier(len(JOBS))

    def run(index):
        start.wait()
        together[index] = train(JOBS[index], index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(JOBS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for index, (a, b) in enumerate(zip(alone, together)):
        for u, v in zip(a, b):
            assert np.array_equal(u, v), f"job {index} differs when trained beside the others"
    print("same results")
""")


@pytest.mark.parametrize("threshold", [1, None], ids=["every-kernel-parallel", "shipped-threshold"])
def test_threads_training_different_models_match_single_thread(threshold):
    from nnengine.kernels.cpu import config
    thresholds = (threshold, threshold) if threshold else (config.PARALLEL_MIN_ELEMENTS,
                                                           config.PARALLEL_MIN_STREAMING_ELEMENTS)
    assert 515 * 2048 >= config.PARALLEL_MIN_ELEMENTS       # the big job's predict takes a parallel kernel
    done = subprocess.run([sys.executable, "-c", STRESS, *map(str, thresholds)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-3000:]}"
    assert "same results" in done.stdout


def test_threads_predicting_with_one_model_match_single_thread():
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    batches = [rng.standard_normal((40 + i, 12)).astype("float32") for i in range(6)]
    start = threading.Barrier(len(batches))
    results = [None] * len(batches)

    def predict(index):        # the model is unbuilt: the first calls race to build it
        start.wait()
        results[index] = [model.predict(batches[index], batch_size=16, verbose=0) for _ in range(20)]

    threads = [threading.Thread(target=predict, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [len(layer.weights) for layer in model.layers] == [2, 2]      # built once, not once per thread
    for batch, outputs in zip(batches, results):
        alone = model.predict(batch, batch_size=16, verbose=0)
        for output in outputs:
            assert np.array_equal(output, alone)


def test_first_backend_use_from_many_threads_gives_one_instance(monkeypatch):
    slow_made = []

    def slow_factory(device):            # the numba backend's first import takes a while: widen the window
        time.sleep(0.05)
        slow_made.append(device)
        return backends.NumpyBackend(device)

    monkeypatch.setitem(backends._FACTORIES, "cpu", slow_factory)
    monkeypatch.setattr(backends, "_INSTANCES", {})
    start = threading.Barrier(8)
    got = []

    def first_use():
        start.wait()
        got.append(backends.get_backend("cpu"))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 8 and all(b is got[0] for b in got)
    assert slow_made == ["cpu"]


def test_layer_names_stay_distinct_across_threads():
    names = []
    start = threading.Barrier(4)

    def make():
        start.wait()
        names.extend(keras.layers.Dense(1).name for _ in range(200))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(names)) == 800


def test_parallel_kernels_hold_the_launch_lock():
    from nnengine.kernels.cpu import config
    seen = []
    wrapped = config.OneThreadAtATime(lambda: seen.append(config._PARALLEL_LAUNCH.locked()))
    wrapped()
    assert seen == [True] and not config._PARALLEL_LAUNCH.locked()
    backend = ne.get_backend("cpu")
    assert backend is ne.get_backend("cpu")
