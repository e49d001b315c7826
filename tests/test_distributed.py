"""nnengine.distributed: one process alone, and two processes under mpiexec (MPICH's wheel, installed by [dev]).

The two-process runs are child processes started with mpiexec; each test reads what rank 0 wrote and
compares it with the same training done in this process.
"""
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import nnengine as nn
import nnengine.distributed as hvd
from nnengine import keras

MPIEXEC = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
needs_mpi = pytest.mark.skipif(not os.path.exists(MPIEXEC) or not shutil.which(MPIEXEC) and
                               not os.access(MPIEXEC, os.X_OK), reason="no mpiexec here")

RNG = np.random.default_rng(0)
X = RNG.standard_normal((32, 5))
Y = RNG.integers(0, 3, 32)
START_SEED = 7


def build(optimizer, dtype="float64"):
    keras.utils.set_random_seed(START_SEED)
    model = keras.Sequential([keras.Input((5,), dtype=dtype), keras.layers.Dense(6, activation="tanh", dtype=dtype),
                              keras.layers.Dense(3, activation="softmax", dtype=dtype)])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def test_a_single_process_runs_as_rank_0_of_1_and_trains_as_without_it():
    hvd.init()
    assert (hvd.rank(), hvd.size(), hvd.local_rank(), hvd.local_size()) == (0, 1, 0, 1)
    plain, distributed = build(keras.optimizers.Adam(0.01)), build(hvd.DistributedOptimizer(keras.optimizers.Adam(0.01)))
    plain.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    distributed.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(plain.get_weights(), distributed.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert type(distributed.optimizer).__name__ == "Adam" and isinstance(distributed.optimizer, keras.optimizers.Adam)
    assert hvd.shard(np.arange(10)).tolist() == list(range(10))


def test_a_custom_loop_exchanges_the_gradients_before_the_update(monkeypatch):
    # apply_gradients goes through the optimizer's exchange (the allreduce), as the trainer's step does
    hvd.init()
    optimizer = hvd.DistributedOptimizer(keras.optimizers.SGD(1.0))
    seen = []
    monkeypatch.setattr(type(optimizer), "exchange_gradients",
                        lambda self, backend, arrays: seen.append(len(arrays)) or [a * 2 for a in arrays])
    param = nn.tensor([1.0, 2.0], requires_grad=True)
    optimizer.apply_gradients([(nn.tensor([0.5, 0.25]), param), (None, nn.tensor([0.0]))])
    assert seen == [1]
    np.testing.assert_allclose(param.numpy(), [0.0, 1.5])        # 1 - 2 * 0.5, 2 - 2 * 0.25
    with pytest.raises(ValueError, match="on different devices"):
        optimizer.apply_gradients([(nn.tensor([1.0]), nn.tensor([0.0], requires_grad=True)),
                                   (nn.tensor([1.0], device="numpy"), nn.tensor([0.0], device="numpy"))])


def test_buckets_keep_dtypes_apart_and_respect_the_size():
    arrays = [np.zeros(10, np.float32), np.zeros(10, np.float32), np.zeros(4, np.float64), np.zeros(30, np.float32)]
    assert hvd._buckets(arrays, bucket_bytes=80) == [[0, 1], [2], [3]]


TWO_PROCESSES = textwrap.dedent("""
    import sys
    import numpy as np
    import nnengine.distributed as hvd
    sys.path.insert(0, sys.argv[1])
    from test_distributed import X, Y, build
    from nnengine import keras

    hvd.init()
    kind, out = sys.argv[2], sys.argv[3]
    nccl = None
    if kind.endswith("-cuda"):        # each process on a fake GPU, its gradients averaged by a fake NCCL
        import cuda_fake
        from test_cuda_backend import FakeGPU
        gpu = FakeGPU().__enter__()
        nccl = gpu.cupy.cuda.nccl = cuda_fake.fake_nccl(hvd._comm())
        gpu.patch.setitem(sys.modules, "cupy.cuda", gpu.cupy.cuda)
        gpu.patch.setitem(sys.modules, "cupy.cuda.nccl", nccl)
    optimizer = keras.optimizers.SGD(0.1, momentum=0.5) if kind == "sgd" else keras.optimizers.Adam(0.02)
    model = build(hvd.DistributedOptimizer(optimizer, bucket_bytes=200))
    if nccl is not None:
        model.to("cuda")
    if hvd.rank() == 1:                                   # a different start: the broadcast must fix it
        model.set_weights([w + 1.0 for w in model.get_weights()])
    # each process takes its half of every batch of 8: rows 8i + 4r .. 8i + 4r + 3
    rows = np.concatenate([np.arange(8 * i + 4 * hvd.rank(), 8 * i + 4 * hvd.rank() + 4) for i in range(4)])
    history = model.fit(X[rows], Y[rows], batch_size=4, epochs=3, shuffle=False, verbose=1,
                        callbacks=[hvd.BroadcastGlobalVariablesCallback(0), hvd.MetricAverageCallback()])
    weights = np.concatenate([w.reshape(-1) for w in model.get_weights()])
    everyone = hvd._comm().allgather(weights)
    if hvd.rank() == 0:
        np.savez(out, *model.get_weights(), same=np.array(all(np.array_equal(everyone[0], w) for w in everyone)),
                 loss=np.array(history.history["loss"]), fallback=np.array(str(model._compiler.fallback_reason)),
                 plans=np.array(sorted(model._compiler.captures.elements()), dtype=str),
                 nccl=np.array([call[0] for call in nccl.calls] if nccl is not None else [], dtype=str))
""")



def run_mpiexec(command, env=None, **keywords):
    """subprocess.run of an mpiexec command. Where the tests run as root (a GPU machine's container), Open MPI's
    mpiexec refuses to start unless told that is meant; MPICH's ignores these variables."""
    env = dict(os.environ if env is None else env)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return subprocess.run(command, env=env, **keywords)

def run_two(tmp_path, *args, timeout=240):
    script = tmp_path / "two.py"
    script.write_text(TWO_PROCESSES)
    return run_mpiexec([MPIEXEC, "-n", "2", sys.executable, str(script), str(Path(__file__).parent), *args],
                          capture_output=True, text=True, timeout=timeout)


AVERAGE = textwrap.dedent("""
    import sys
    import numpy as np
    import nnengine.distributed as hvd
    hvd.init()
    rng = np.random.default_rng(hvd.rank())
    arrays = [rng.standard_normal((5, 3)), rng.standard_normal(7).astype(np.float32), rng.standard_normal(())]
    averaged = hvd.allreduce_average(arrays, bucket_bytes=64)
    everyone = hvd._comm().allgather(arrays)
    if hvd.rank() == 0:
        exact = [np.mean([np.asarray(mine[i], np.float64) for mine in everyone], axis=0) for i in range(3)]
        np.savez(sys.argv[1], *averaged, *exact)
""")


@needs_mpi
@pytest.mark.parametrize("processes", [2, 3])
def test_allreduce_average_averages_every_array_in_its_dtype_and_shape(tmp_path, processes):
    script = tmp_path / "average.py"
    script.write_text(AVERAGE)
    done = run_mpiexec([MPIEXEC, "-n", str(processes), sys.executable, str(script), str(tmp_path / "out.npz")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = np.load(tmp_path / "out.npz", allow_pickle=False)
    for i, (shape, dtype) in enumerate([((5, 3), np.float64), ((7,), np.float32), ((), np.float64)]):
        got, exact = result[f"arr_{i}"], result[f"arr_{i + 3}"]
        assert got.shape == shape and got.dtype == dtype
        np.testing.assert_allclose(got, exact, rtol=2 * np.finfo(dtype).eps * processes, atol=1e-30)


@needs_mpi
@pytest.mark.parametrize("kind", ["sgd", "adam", "adam-cuda"])
def test_two_processes_with_half_batches_equal_one_process_with_whole_batches(tmp_path, kind):
    done = run_two(tmp_path, kind, str(tmp_path / "out.npz"))
    assert done.returncode == 0, done.stderr[-3000:]
    result = np.load(tmp_path / "out.npz", allow_pickle=False)
    assert bool(result["same"]), "the processes ended with different weights"
    # the step compiles as two plans around the host allreduce (gradients, then the update): no eager fallback
    assert result["plans"].tolist() == ["train-gradients", "train-update"] and str(result["fallback"]) == "None"
    if kind.endswith("-cuda"):       # one communicator, then every bucket through NCCL (4 steps x 3 epochs)
        calls = result["nccl"].tolist()
        assert calls[0] == "init" and calls.count("init") == 1 and calls.count("allReduce") >= 12, calls
    optimizer = keras.optimizers.SGD(0.1, momentum=0.5) if kind == "sgd" else keras.optimizers.Adam(0.02)
    alone = build(optimizer)
    history = alone.fit(X, Y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    for index, weight in enumerate(alone.get_weights()):
        np.testing.assert_allclose(result[f"arr_{index}"], weight, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(result["loss"], history.history["loss"], rtol=1e-6)   # averaged over processes
    assert done.stdout.count("Epoch 1/3") == 1, "only rank 0 prints progress"


FAULT = textwrap.dedent("""
    import numpy as np
    import nnengine.distributed as hvd
    hvd.init()
    if hvd.rank() == 1:
        raise RuntimeError("rank 1 fails")
    hvd.allreduce_average([np.ones(3)])             # rank 0 would wait here forever without MPI_Abort
""")


MISMATCH = textwrap.dedent("""
    import sys
    import numpy as np
    import nnengine.distributed as hvd
    from nnengine import keras
    hvd.init()
    units = 6 if hvd.rank() == 0 else 7                     # rank 1 built a different model
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(units), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=hvd.DistributedOptimizer(keras.optimizers.Adam()), loss="sparse_categorical_crossentropy")
    try:
        model.fit(np.zeros((8, 5)), np.zeros(8, int), verbose=0, callbacks=[hvd.BroadcastGlobalVariablesCallback(0)])
    except ValueError as error:
        print(f"rank {hvd.rank()}: {error}")
        sys.exit(3)
""")


@needs_mpi
def test_mismatched_models_are_a_clear_error_on_every_process_at_the_broadcast(tmp_path):
    script = tmp_path / "mismatch.py"
    script.write_text(MISMATCH)
    done = run_mpiexec([MPIEXEC, "-n", "2", sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0, done.stdout + done.stderr
    for rank in (0, 1):
        assert f"rank {rank}: nnengine.distributed: the processes hold different weights" in done.stdout, done.stdout
    assert "array 0: rank 0 ((5, 6), '<f4'), rank 1 ((5, 7), '<f4')" in done.stdout


@needs_mpi
def test_one_process_failing_stops_the_others(tmp_path):
    script = tmp_path / "fault.py"
    script.write_text(FAULT)
    start = time.perf_counter()
    done = run_mpiexec([MPIEXEC, "-n", "2", sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "rank 1 fails" in done.stderr
    assert time.perf_counter() - start < 60


def test_warmup_and_errors():
    hvd.init()
    model = build(keras.optimizers.SGD(0.1))
    warmup = hvd.LearningRateWarmupCallback(initial_lr=0.1, warmup_epochs=2)
    model.fit(X, Y, batch_size=8, epochs=3, verbose=0, callbacks=[warmup])
    assert model.optimizer.learning_rate == pytest.approx(0.1)     # one process: the rate is initial_lr throughout
    with pytest.raises(TypeError, match="DistributedOptimizer: expected an nnengine optimizer"):
        hvd.DistributedOptimizer("adam")
    with pytest.raises(ValueError, match="shard: the arrays must have the same length"):
        hvd.shard(np.arange(3), np.arange(4))


@needs_mpi
def test_the_distributed_example_trains_on_two_processes_and_saves_once(tmp_path):
    pytest.importorskip("sklearn")
    example = Path(__file__).resolve().parent.parent / "examples" / "distributed_digits.py"
    done = run_mpiexec([MPIEXEC, "-n", "2", sys.executable, str(example), "--epochs", "12", "--save",
                           str(tmp_path / "d.h5")], capture_output=True, text=True, timeout=300,
                          cwd=str(example.parent))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("test accuracy") == 1 and done.stdout.count("Epoch 1/12") == 1
    accuracy = float(done.stdout.split("test accuracy: ")[1].split()[0])
    assert accuracy > 0.9
    assert os.listdir(tmp_path) == ["d.h5"]


@needs_mpi
def test_the_distributed_benchmark_measures_against_a_bare_allreduce_in_one_run(tmp_path):
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    done = run_mpiexec([MPIEXEC, "-n", "2", sys.executable, "-m", "benchmarks.distributed", "--repeats", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300, env=env, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    import json
    result = json.loads((tmp_path / "distributed.json").read_text())
    assert result["processes"] == 2 and result["parameters"] == 669_706
    assert result["allreduce_s"] > 0 and result["bare_allreduce_s"] > 0 and result["latency_s"] > 0
    assert "of the bare Allreduce's bandwidth" in (tmp_path / "distributed.md").read_text()
