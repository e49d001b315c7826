"""Data-parallel training over MPI, with Horovod's Keras API: ``import nnengine.distributed as hvd``.

    hvd.init()
    x, y = hvd.shard(x, y)                                   # each process its part of the data
    model.compile(optimizer=hvd.DistributedOptimizer(keras.optimizers.Adam(0.001 * hvd.size())), ...)
    model.fit(x, y, callbacks=[hvd.BroadcastGlobalVariablesCallback(0), hvd.MetricAverageCallback()])

    mpiexec -n 2 python train.py                                  # one machine
    mpiexec -n 8 -f hostfile python train.py                      # several (MPICH's hostfile: one host per line)

* ``init()`` joins MPI's world (mpi4py, the ``[mpi]`` extra). Without mpi4py, a single process runs as
  rank 0 of 1; a process started by mpiexec without mpi4py gets a clear error instead of training alone.
* ``DistributedOptimizer(optimizer)`` averages the gradients of every process before each update: they
  are packed into flat buffers of at most ``bucket_bytes`` (Horovod's tensor fusion), each reduced with
  one in-place Allreduce: through MPI for host tensors, and for CUDA tensors through NCCL on the GPU
  (CuPy's NCCL bindings; the communicator's unique id goes from rank 0 to the others over MPI), so their
  gradients never leave the device. Without CuPy's NCCL, CUDA gradients go through the host over MPI.
  Give each process its own GPU: ``model.to(f"cuda:{hvd.local_rank()}")``. The exchange is a
  collective call outside the backends, so a distributed step runs eagerly (jit_report says why).
* Only rank 0 prints progress bars and writes ModelCheckpoint/CSVLogger files, unless ``init(quiet=False)``.
* Faults: ``init`` installs an exception hook that calls ``MPI_Abort`` when a process dies of an
  uncaught exception, so the others stop at once instead of waiting forever in an Allreduce.
"""
import os
import sys
import time

import numpy as np

from . import callbacks as callbacks_module
from .backends import host_buffers
from .optimizers import Optimizer

__all__ = ["init", "rank", "size", "local_rank", "local_size", "is_initialized", "allreduce_average",
           "allreduce_average_on_gpu", "nccl_available", "check_same_layout",
           "broadcast_arrays", "DistributedOptimizer", "BroadcastGlobalVariablesCallback", "MetricAverageCallback",
           "LearningRateWarmupCallback", "shard"]

_STATE = {"comm": None, "local": None, "initialized": False}
#: how long a failing process waits, after printing its traceback, before MPI_Abort ends every process
ABORT_GRACE_SECONDS = 0.5
#: the environment variables MPI launchers set: a process that has one was started as part of a group
_LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "PMIX_RANK")


def init(quiet=True):
    """Join the MPI world (or run alone without mpi4py); ``quiet``: only rank 0 prints and writes files."""
    try:
        from mpi4py import MPI
    except ImportError:
        if any(int(os.environ.get(v, "1") or 1) > 1 for v in _LAUNCHER_VARIABLES if v.endswith("SIZE")):
            raise RuntimeError("nnengine.distributed.init: this process was started by an MPI launcher but mpi4py "
                               "is not installed: pip install 'nnengine[mpi]'") from None
        _STATE.update(comm=None, local=None, initialized=True)
        return
    comm = MPI.COMM_WORLD
    _STATE.update(comm=comm, local=comm.Split_type(MPI.COMM_TYPE_SHARED), initialized=True)
    if comm.Get_size() > 1:
        _abort_on_uncaught_exceptions(comm)
        callbacks_module.set_secondary_process(quiet and comm.Get_rank() != 0)


def _abort_on_uncaught_exceptions(comm):
    """A process that dies of an exception takes the others down with it (MPI_Abort), instead of a hang."""
    previous = sys.excepthook

    def abort(kind, value, traceback):
        previous(kind, value, traceback)
        sys.stderr.flush()
        # mpiexec forwards this process's stderr while it runs; MPI_Abort tears the job down at once, and
        # could cut the traceback short (a CI run saw its first line only): give the forwarding a moment
        time.sleep(ABORT_GRACE_SECONDS)
        comm.Abort(1)
    sys.excepthook = abort


def is_initialized():
    """True after ``init()``."""
    return _STATE["initialized"]


def _comm():
    if not _STATE["initialized"]:
        raise RuntimeError("nnengine.distributed: call init() first")
    return _STATE["comm"]


def rank():
    """This process's rank in the world (0 without MPI)."""
    comm = _comm()
    return 0 if comm is None else comm.Get_rank()


def size():
    """The number of processes (1 without MPI)."""
    comm = _comm()
    return 1 if comm is None else comm.Get_size()


def local_rank():
    """This process's rank among those on its machine."""
    _comm()
    return 0 if _STATE["local"] is None else _STATE["local"].Get_rank()


def local_size():
    """The number of processes on this machine."""
    _comm()
    return 1 if _STATE["local"] is None else _STATE["local"].Get_size()


def allreduce_average(arrays, bucket_bytes=64 << 20):
    """Every process's ``arrays`` averaged elementwise, in buckets of at most ``bucket_bytes`` (one Allreduce each).

    Arrays of one dtype are packed into one flat buffer per bucket, each scaled by 1/N on the way in
    (N processes: the packing pass does the averaging's division, so no pass of its own is left), reduced
    in place with one sum, and handed back as views of the buffer with each array's shape and dtype. With
    N a power of two the scaling is exact, so the result is bitwise sum / N; otherwise it may differ from
    that in the last bit. The buffer comes from ``host_buffers`` (memory already mapped: a fresh 2.7 MB
    buffer page-faulted on every step of the MNIST-size model).
    """
    comm = _comm()
    arrays = [np.asarray(a, order="C") for a in arrays]          # (ascontiguousarray makes 0-d arrays 1-d)
    if comm is None or comm.Get_size() == 1:
        return arrays
    from mpi4py import MPI
    out = [None] * len(arrays)
    for bucket in _buckets(arrays, bucket_bytes):
        dtype = arrays[bucket[0]].dtype
        flat = host_buffers.empty(sum(arrays[i].size for i in bucket), dtype)
        scale, start = dtype.type(1.0 / comm.Get_size()), 0
        for i in bucket:
            np.multiply(arrays[i].reshape(-1), scale, out=flat[start:start + arrays[i].size])
            start += arrays[i].size
        comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        start = 0
        for i in bucket:
            out[i] = flat[start:start + arrays[i].size].reshape(arrays[i].shape)
            start += arrays[i].size
    return out


def nccl_available():
    """Whether CuPy's NCCL bindings load here (the GPU path of allreduce_average_on_gpu)."""
    try:
        from cupy.cuda import nccl
    except Exception:       # no CuPy, or CuPy without its CUDA libraries
        return False
    return bool(getattr(nccl, "available", True))


def _nccl_communicator(comm, device_index):
    """This process's NCCL communicator for GPU ``device_index``, made once: rank 0 draws the unique id and
    MPI broadcasts it, then every rank joins with it (a collective: every process must call this)."""
    cache = _STATE.setdefault("nccl", {})
    if device_index not in cache:
        from cupy.cuda import nccl
        unique_id = nccl.get_unique_id() if comm.Get_rank() == 0 else None
        unique_id = comm.bcast(unique_id, root=0)
        cache[device_index] = nccl.NcclCommunicator(comm.Get_size(), unique_id, comm.Get_rank())
    return cache[device_index]


def allreduce_average_on_gpu(arrays, device_index, bucket_bytes=64 << 20):
    """Every process's CuPy ``arrays`` (on GPU ``device_index``) averaged elementwise over NCCL, in buckets of
    at most ``bucket_bytes`` (one in-place allReduce each, on the current stream); nothing leaves the GPU."""
    comm = _comm()
    if comm is None or comm.Get_size() == 1:
        return list(arrays)
    import cupy
    from cupy.cuda import nccl

    from .kernels.cuda import loader
    nccl_types = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64}
    out = [None] * len(arrays)
    with cupy.cuda.Device(device_index):
        communicator = _nccl_communicator(comm, device_index)
        stream = cupy.cuda.get_current_stream().ptr
        for bucket in _buckets(arrays, bucket_bytes):
            flat = cupy.concatenate([arrays[i].reshape(-1) for i in bucket])
            address = loader.pointer(flat)
            communicator.allReduce(address, address, flat.size, nccl_types[flat.dtype], nccl.NCCL_SUM, stream)
            flat *= flat.dtype.type(1.0 / comm.Get_size())
            start = 0
            for i in bucket:
                out[i] = flat[start:start + arrays[i].size].reshape(arrays[i].shape)
                start += arrays[i].size
    return out


def _buckets(arrays, bucket_bytes):
    """Index lists of arrays of one dtype whose total size stays within ``bucket_bytes`` (one array may exceed it)."""
    buckets, current, current_bytes, current_dtype = [], [], 0, None
    for index, array in enumerate(arrays):
        if current and (array.dtype != current_dtype or current_bytes + array.nbytes > bucket_bytes):
            buckets.append(current)
            current, current_bytes = [], 0
        current.append(index)
        current_bytes += array.nbytes
        current_dtype = array.dtype
    if current:
        buckets.append(current)
    return buckets


def check_same_layout(arrays, what="weights"):
    """Raise ValueError on every process unless every process holds arrays of the same shapes and dtypes
    (one allgather of their descriptions): a collective over mismatched buffers would fail obscurely or hang."""
    comm = _comm()
    if comm is None or comm.Get_size() == 1:
        return
    mine = [(tuple(np.shape(a)), np.asarray(a).dtype.str) for a in arrays]
    everyone = comm.allgather(mine)
    for other_rank, theirs in enumerate(everyone):
        if theirs != everyone[0]:
            first = next((i for i, (a, b) in enumerate(zip(everyone[0], theirs)) if a != b), min(len(theirs),
                                                                                                  len(everyone[0])))
            raise ValueError(
                f"nnengine.distributed: the processes hold different {what}: rank 0 has {len(everyone[0])} arrays, "
                f"rank {other_rank} has {len(theirs)}; the first difference is array {first}: rank 0 "
                f"{everyone[0][first] if first < len(everyone[0]) else 'none'}, rank {other_rank} "
                f"{theirs[first] if first < len(theirs) else 'none'} (every process must build the same model)")


def broadcast_arrays(arrays, root_rank=0):
    """The ``arrays`` of process ``root_rank``, on every process (shapes and dtypes must agree: checked first)."""
    comm = _comm()
    if comm is None or comm.Get_size() == 1:
        return [np.asarray(a) for a in arrays]
    check_same_layout(arrays)
    result = []
    for array in arrays:
        buffer = np.array(array, copy=True, order="C")
        comm.Bcast(buffer, root=root_rank)
        result.append(buffer)
    return result


class _Averaging:
    """Mixed into an optimizer's class by DistributedOptimizer: average the gradients, then update."""

    bucket_bytes = 64 << 20
    exchanges_gradients = True

    def exchange_gradients(self, backend, grad_arrays):
        """The gradient arrays averaged over every process (None entries kept): through NCCL when they are on
        a GPU and NCCL loads, else through MPI on the host. The trainer calls it between its two plans."""
        present = [g for g in grad_arrays if g is not None]
        device = backend.device
        if device.startswith("cuda") and nccl_available():                   # stays on the GPU
            averaged = allreduce_average_on_gpu(present, int(device.split(":")[1]), self.bucket_bytes)
        elif all(isinstance(g, np.ndarray) for g in present):                # host arrays: no copies
            averaged = allreduce_average(present, self.bucket_bytes)
        else:
            averaged = [backend.from_numpy(a) for a in
                        allreduce_average([backend.to_numpy(g) for g in present], self.bucket_bytes)]
        averaged = iter(averaged)
        return [None if g is None else next(averaged) for g in grad_arrays]


def DistributedOptimizer(optimizer, bucket_bytes=64 << 20):
    """``optimizer`` with its gradients averaged over every process before each update (Horovod's name).

    The result is the same kind of optimizer (saved under the same class name), so compile, save and
    load treat it as the optimizer it wraps.
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"DistributedOptimizer: expected an nnengine optimizer, got {type(optimizer).__name__}")
    base = type(optimizer)
    distributed = type(base.__name__, (_Averaging, base), {"__module__": __name__,
                                                           "__doc__": f"{base.__name__}, gradients averaged."})
    wrapped = distributed.__new__(distributed)
    wrapped.__dict__.update(optimizer.__dict__)
    wrapped.bucket_bytes = int(bucket_bytes)
    return wrapped


class BroadcastGlobalVariablesCallback(callbacks_module.Callback):
    """At the start of training every process takes rank ``root_rank``'s weights and optimizer state."""

    def __init__(self, root_rank=0):
        super().__init__()
        self.root_rank = root_rank

    def on_train_begin(self, logs=None):
        """Broadcast the weights, the step count and any optimizer slots."""
        self.model.set_weights(broadcast_arrays(self.model.get_weights(), self.root_rank))
        optimizer = self.model.optimizer
        if optimizer is not None:
            step = broadcast_arrays([np.array([optimizer.iterations], np.int64)], self.root_rank)[0]
            optimizer.iterations = int(step[0])
            slots = [tensor for _, _, tensor in optimizer.slot_variables()]
            for tensor, value in zip(slots, broadcast_arrays([t.numpy() for t in slots], self.root_rank)):
                tensor.assign_(value)


class MetricAverageCallback(callbacks_module.Callback):
    """Average each epoch's logged values over every process, so all report (and monitor) the same."""

    def on_epoch_end(self, epoch, logs=None):
        """Replace each number in the logs by its mean over processes."""
        if not logs:
            return
        keys = [k for k, v in logs.items() if isinstance(v, (int, float, np.floating))]
        values = allreduce_average([np.array([float(logs[k]) for k in keys])])[0]
        logs.update({k: float(v) for k, v in zip(keys, values)})


class LearningRateWarmupCallback(callbacks_module.Callback):
    """Horovod's warmup: the rate grows linearly from initial_lr / size to initial_lr over ``warmup_epochs``.

    lr = initial_lr / size * (e * (size - 1) / warmup_epochs + 1), with e the fractional epoch.
    """

    def __init__(self, initial_lr, warmup_epochs=5, steps_per_epoch=None, verbose=0):
        super().__init__()
        self.initial_lr, self.warmup_epochs = float(initial_lr), float(warmup_epochs)
        self.steps_per_epoch, self.verbose, self.epoch = steps_per_epoch, verbose, 0

    def on_epoch_begin(self, epoch, logs=None):
        """Note the epoch."""
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        """Set this batch's rate while warming up."""
        if self.epoch >= self.warmup_epochs:
            return
        steps = self.steps_per_epoch or self.params.get("steps") or 1
        progress = self.epoch + batch / steps
        self.model.optimizer.learning_rate = self.initial_lr / size() * (progress * (size() - 1) /
                                                                         self.warmup_epochs + 1)


def shard(*arrays):
    """This process's contiguous part of each array (sizes differ by at most one), so that the processes
    together see every sample once per epoch."""
    count, parts = len(arrays[0]), size()
    start, stop = count * rank() // parts, count * (rank() + 1) // parts
    if any(len(a) != count for a in arrays):
        raise ValueError(f"shard: the arrays must have the same length, got {[len(a) for a in arrays]}")
    sharded = tuple(a[start:stop] for a in arrays)
    return sharded[0] if len(sharded) == 1 else sharded

