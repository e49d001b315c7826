"""CUDA Graphs of compiled steps (nnengine/backends/cuda_graphs.py), tested on the fake GPU.

The fake's stream capture (``cuda_fake.FakeCapture``) behaves as a real one where it matters here: a
recorded operation runs only when the graph is launched, with the arrays and the by-value arguments it
was recorded with; nothing computed while recording is visible afterwards; a host transfer while
recording fails; and memory allocated while recording must come from a private pool. So a graph that
froze a scalar, read a stale batch or weight, or returned a result before its first launch trains to
other numbers than the Python replay of the same plan, and these tests compare the two exactly.
"""
import cuda_fake
import numpy as np
import pytest
from test_backends import CASES, Sizes, assert_agrees_with_reference, run
from test_cuda_backend import FakeGPU

import nnengine as nn
from nnengine import capture
from nnengine.backends import cuda_graphs
from nnengine.backends.base import LoweringRefused

UPDATES = ("sgd_update", "adam_update", "adam_update_many", "rmsprop_update", "adagrad_update")


@pytest.mark.parametrize("name", UPDATES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("flag", [True, False])
def test_updates_reading_their_scalars_from_device_memory_agree_with_the_reference(name, dtype, flag):
    args = CASES[name](np.random.default_rng(7), np.dtype(dtype), Sizes(((3, 4), (4,)), 3, 2, 4, flag, "relu"))
    with FakeGPU() as gpu:
        backend = gpu.backend()
        backend.graph_recording.slots = cuda_fake.ImmediateSlots(gpu.cupy)
        try:
            assert_agrees_with_reference(backend, name, args, dtype)
        finally:
            backend.graph_recording.slots = None
        launched = {kernel for kernel, _, _ in gpu.launches}
    assert launched == {name + "_at"}


class TakenSlots(cuda_fake.ImmediateSlots):
    """cuda_fake.ImmediateSlots that keep each update's scalars as the primitive handed them over."""

    def __init__(self, cupy):
        super().__init__(cupy)
        self.taken = []

    def take(self, scalars):
        self.taken.append(scalars)
        return super().take(scalars)


@pytest.mark.parametrize("name", UPDATES)
def test_update_scalars_are_the_ones_the_primitive_passes_its_kernel(name):
    args = CASES[name](np.random.default_rng(3), np.dtype(np.float32), Sizes(((3, 4), (4,)), 3, 2, 4, True, "relu"))
    with FakeGPU() as gpu:
        backend = gpu.backend()
        backend.graph_recording.slots = slots = TakenSlots(gpu.cupy)
        try:
            run(backend, name, args)
        finally:
            backend.graph_recording.slots = None
    assert slots.taken == [cuda_graphs.update_scalars(name, args)]
    assert all(type(value) is np.float32 for value in slots.taken[0])


def _model(optimizer, loss="categorical_crossentropy"):
    nn.utils.set_random_seed(0)
    model = nn.Sequential([nn.layers.Dense(16, activation="relu", input_shape=(10,)),
                           nn.layers.Dense(8, activation="tanh"), nn.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    model.to("cuda")
    return model


def _data(samples=100):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((samples, 10)).astype(np.float32)
    return x, np.eye(10, dtype=np.float32)[rng.integers(0, 10, samples)]


def _train(optimizer, graphs, monkeypatch, loss="categorical_crossentropy", callbacks=()):
    """History, weights, evaluation and predictions of a fit on the fake GPU, with graphs on or off."""
    monkeypatch.setattr(capture, "LOWERING_ENABLED", graphs)
    x, y = _data()
    with FakeGPU():
        model = _model(optimizer() if callable(optimizer) else optimizer, loss)
        history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.2, verbose=0,
                            callbacks=list(callbacks)).history
        results = (history, model.get_weights(), model.evaluate(x, y, verbose=0), model.predict(x, verbose=0))
        report = model.jit_report()
        graphs_of = [plan.lowered for plan in model._compiler.plans().values() if plan.is_lowered]
    return results, report, graphs_of


def _assert_same(ours, theirs):
    (history, weights, evaluation, predictions), (history2, weights2, evaluation2, predictions2) = ours, theirs
    assert history == history2
    for a, b in zip(weights, weights2):
        np.testing.assert_array_equal(a, b)
    assert evaluation == evaluation2
    np.testing.assert_array_equal(predictions, predictions2)


@pytest.mark.parametrize("optimizer", [
    "adam",
    lambda: nn.optimizers.AdamW(learning_rate=0.01, weight_decay=0.05, amsgrad=True),
    lambda: nn.optimizers.SGD(learning_rate=nn.optimizers.schedules.ExponentialDecay(0.1, 5, 0.5), momentum=0.9,
                              nesterov=True),
    lambda: nn.optimizers.RMSprop(learning_rate=0.01, momentum=0.5, centered=True),
    lambda: nn.optimizers.Adagrad(learning_rate=0.1),
], ids=["adam", "adamw-amsgrad", "sgd-schedule", "rmsprop", "adagrad"])
def test_a_fit_with_cuda_graphs_gives_exactly_the_numbers_of_the_python_replay(optimizer, monkeypatch):
    with_graphs, report, graphs = _train(optimizer, True, monkeypatch)
    replayed, replay_report, _ = _train(optimizer, False, monkeypatch)
    _assert_same(with_graphs, replayed)
    # every plan that replayed is a graph: train, test (validation's full and last batch), predict's ...
    assert report["plans_lowered"] >= 4 and replay_report["plans_lowered"] == 0
    assert all(isinstance(g, cuda_graphs.GraphStep) and g.recordings == 1 and g.launches >= 1 for g in graphs)


def test_a_learning_rate_changed_by_a_callback_reaches_the_graph(monkeypatch):
    holder = {}

    def slower(epoch, logs):                 # the graph's update reads the new rate from device memory
        holder["model"].optimizer.learning_rate = holder["model"].optimizer.learning_rate * 0.5

    class Remember(nn.callbacks.LambdaCallback):
        def set_model(self, model):
            holder["model"] = model
            super().set_model(model)
    with_graphs, _, _ = _train("adam", True, monkeypatch, callbacks=[Remember(on_epoch_end=slower)])
    replayed, _, _ = _train("adam", False, monkeypatch, callbacks=[Remember(on_epoch_end=slower)])
    _assert_same(with_graphs, replayed)
    assert with_graphs[0] != _train("adam", True, monkeypatch)[0][0]        # the rate did change the training


def test_new_weight_buffers_record_a_new_graph(monkeypatch):
    def run(graphs):
        monkeypatch.setattr(capture, "LOWERING_ENABLED", graphs)
        x, y = _data(64)
        with FakeGPU():
            model = _model("adam")
            start = model.get_weights()
            model.fit(x, y, epochs=2, batch_size=16, verbose=0)
            model.set_weights(start)             # assign_: new device buffers for every weight
            history = model.fit(x, y, epochs=2, batch_size=16, verbose=0).history
            recordings = [plan.lowered.recordings for plan in model._compiler.plans().values() if plan.is_lowered]
        return history, model.get_weights(), recordings
    history, weights, recordings = run(True)
    history2, weights2, _ = run(False)
    assert history == history2
    for a, b in zip(weights, weights2):
        np.testing.assert_array_equal(a, b)
    assert max(recordings) == 2


def test_a_compiled_step_is_one_graph_launch_and_its_inputs_copied_in(monkeypatch):
    monkeypatch.setattr(capture, "LOWERING_ENABLED", True)
    log = cuda_fake.DeviceLog()
    x, y = _data(32)
    with FakeGPU():
        cuda_fake._LOG["current"] = log
        model = _model("adam")
        for _ in range(4):            # slots, capture, verification, then graph steps
            model.train_on_batch(x, y)
        log.clear()
        model.train_on_batch(x, y)
    # the batch uploaded, copied where the graph reads it, the step's scalars uploaded, one launch
    assert log.operations == ["upload", "upload", "copy", "copy", "upload", "graph launch"]
    assert log.syncs == ["asnumpy", "asnumpy"]          # the trainer reads the loss and the predictions


def test_graphs_stay_off_unless_asked_for_and_say_how_to_turn_them_on(monkeypatch):
    monkeypatch.setattr(cuda_graphs, "ENABLED", False)
    with pytest.raises(LoweringRefused, match="NNENGINE_CUDA_GRAPHS=1"):
        cuda_graphs.lower(None, [], [], [], replay=lambda inputs: inputs)
    x, y = _data(32)
    with FakeGPU():
        monkeypatch.setattr(cuda_graphs, "ENABLED", False)
        model = _model("adam")
        for _ in range(4):
            model.train_on_batch(x, y)
        (plan,) = [p for key, p in model._compiler.plans().items() if key[0] == "train"]
    assert not plan.is_lowered and "NNENGINE_CUDA_GRAPHS=1" in plan.lowering_reason


def test_a_host_transfer_inside_the_step_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(cuda_graphs, "ENABLED", True)
    with pytest.raises(LoweringRefused, match="transfers between host and device.*to_numpy"):
        cuda_graphs.lower(None, [("exp", (("input", 0),), {}), ("to_numpy", (("result", (0, None)),), {})],
                          [], [("result", (1, None))], replay=lambda inputs: inputs)
    with pytest.raises(LoweringRefused, match="records the plan's Python replay"):
        cuda_graphs.lower(None, [], [], [])


def test_a_recording_that_fails_restores_the_optimizer_and_the_plan_keeps_its_replay(monkeypatch):
    monkeypatch.setattr(capture, "LOWERING_ENABLED", True)
    x, y = _data(32)
    with FakeGPU():
        model = _model("adam")
        backend = nn.backends.get_backend("cuda:0")
        for _ in range(3):
            model.train_on_batch(x, y)
        (plan,) = [p for key, p in model._compiler.plans().items() if key[0] == "train"]
        graph = plan.lowered
        original = graph.replay

        def syncing(inputs):        # a step that reads a device value on the host while recording
            backend.to_numpy(inputs[0])
            return original(inputs)
        graph.replay = syncing
        before = model.optimizer.iterations
        model.train_on_batch(x, y)
        assert not plan.is_lowered and "could not be recorded into a CUDA Graph" in plan.lowering_reason
        assert "cudaErrorStreamCaptureUnsupported" in plan.lowering_reason
        assert model.optimizer.iterations == before + 1          # counted once: by the replay that ran instead


def test_a_graph_refused_at_a_later_recording_replays_in_python_from_then_on(monkeypatch, caplog):
    monkeypatch.setattr(capture, "LOWERING_ENABLED", True)
    x, y = _data(32)
    with FakeGPU():
        model = _model("adam")
        for _ in range(5):
            model.train_on_batch(x, y)
        (plan,) = [p for key, p in model._compiler.plans().items() if key[0] == "train"]
        graph = plan.lowered
        assert graph.recordings == 1
        model.set_weights(model.get_weights())        # new buffers: the next step records again ...
        graph._record = lambda inputs: (_ for _ in ()).throw(LoweringRefused("no"))    # ... and is refused
        loss, _ = model.train_on_batch(x, y)
        assert graph.refusal == "no" and np.isfinite(loss)
        launches = graph.launches
        model.train_on_batch(x, y)
        assert graph.launches == launches
    assert "replays in Python" in caplog.text


def test_memory_allocated_while_recording_must_come_from_a_private_pool():
    with FakeGPU() as gpu:
        stream = gpu.cupy.cuda.Stream(non_blocking=True)
        stream.begin_capture()
        try:
            with pytest.raises(AssertionError, match="memory pool of the graph's own"):
                gpu.cupy.zeros(3, np.float32)
        finally:
            stream.end_capture()


def test_with_several_gpus_a_graph_is_staged_and_launched_on_its_own_gpu(monkeypatch):
    monkeypatch.setattr(capture, "LOWERING_ENABLED", True)
    x, y = _data(32)
    with FakeGPU(device_count=2) as gpu:
        current = {"device": 0}
        launched_on = []
        gpu.cupy.cuda.runtime.getDevice = lambda: current["device"]
        gpu.cupy.cuda.runtime.setDevice = lambda i: current.update(device=i)
        nn.utils.set_random_seed(0)
        model = nn.Sequential([nn.layers.Dense(4, activation="relu", input_shape=(10,)),
                               nn.layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        model.to("cuda:1")
        for _ in range(4):
            model.train_on_batch(x, y)
        (plan,) = model._compiler.plans().values()
        launch = cuda_fake.FakeGraph.launch
        monkeypatch.setattr(cuda_fake.FakeGraph, "launch",
                            lambda graph, stream=None: (launched_on.append(current["device"]), launch(graph, stream)))
        model.train_on_batch(x, y)               # the trainer's upload makes GPU 1 current first
        current["device"] = 0                    # a graph run on its own still goes to its GPU
        plan.lowered.run(list(plan.lowered.staging))
    assert plan.is_lowered and launched_on == [1, 1]


def test_a_graph_holds_no_array_of_the_capture_but_its_own(monkeypatch):
    import gc
    import weakref
    monkeypatch.setattr(capture, "LOWERING_ENABLED", True)
    x, y = _data(32)
    with FakeGPU():
        model = _model("sgd")
        recorded = []
        original = capture.Recorder._note

        def note(recorder, name, args, kwargs, result):          # the gradients the update of the capture read
            if name == "sgd_update":
                recorded.append(weakref.ref(args[1]))
            original(recorder, name, args, kwargs, result)
        monkeypatch.setattr(capture.Recorder, "_note", note)
        for _ in range(4):
            model.train_on_batch(x, y)
        (plan,) = [p for key, p in model._compiler.plans().items() if key[0] == "train"]
        assert plan.is_lowered
        gc.collect()
        assert recorded and all(ref() is None for ref in recorded)
