"""A stand-in for CuPy and our CUDA kernels, so the GPU backend's Python side is tested without a GPU.

``FakeCupy`` answers the few CuPy calls the backend and launchers make with numpy's functions
of the same names. ``fake_function`` replaces ``loader.function``: it returns a kernel that
first checks every launch against the kernel's C signature, parsed from our ``.cu`` source
(argument count; arrays where pointers are declared, of the right dtype; ``numpy.int64`` for
``long long``; a scalar of the arrays' dtype for ``T``; a sane grid and block), and then
applies a numpy emulation of the kernel's documented contract. The fused kernels' emulations
call the reference defaults of ``nnengine/backends/base.py`` (no formula is written again here);
the GPU tests check the real kernels against the same reference.
"""
import time
import types
import weakref

import numpy as np

from nnengine.backends import NumpyBackend, recurrent_reference
from nnengine.backends.optimizer_scalars import (AdadeltaScalars, AdagradScalars, AdamaxScalars, AdamScalars,
                                                FtrlScalars, LionScalars, NadamScalars, RMSpropScalars, SGDScalars)
from nnengine.kernels.activation_codes import ACTIVATION_NAMES
from nnengine.kernels.cuda import captured_gemm, loader

#: the kernels' contracts are the reference backend's primitives (base.py's defaults)
REFERENCE = NumpyBackend("numpy")

_DTYPES = {"float": np.float32, "double": np.float64, "int": np.int32, "long long": np.int64}


def signatures(source):
    """{kernel name: [(C type, parameter name), ...]} for the kernels of ``source``."""
    return loader.kernel_signatures(loader.expand(loader.source_path(source)))


def _check_arg(kernel, c_type, name, value, dtype):
    where = f"{kernel} argument {name!r} ({c_type})"
    c_type = c_type.replace("__restrict__", "").strip()
    if c_type.endswith("*"):
        element = c_type.replace("const", "").replace("*", "").strip()
        expected = dtype if element == "T" else np.dtype(_DTYPES[element])
        assert isinstance(value, DeviceArray), f"{where}: got {type(value).__name__}, not an array on the device"
        assert value.dtype == expected, f"{where}: array of {value.dtype}, kernel reads {expected}"
        assert value.flags.c_contiguous, f"{where}: the kernel needs a C-contiguous array"
    elif c_type == "TensorGroup":
        from nnengine.kernels.cuda.optim import TENSOR_GROUP
        assert isinstance(value, np.ndarray) and value.dtype == TENSOR_GROUP and value.shape == (1,), (
            f"{where}: pass a host array of one optim.TENSOR_GROUP")
        count = int(value["count"][0])
        assert 1 <= count <= value["start"].shape[1] - 1, f"{where}: {count} tensors"
        for address in value["array"][0, :, :count].reshape(-1):
            assert int(address) in _ADDRESSES, f"{where}: {int(address):#x} is no device array's address"
            assert _ADDRESSES[int(address)].dtype == dtype, f"{where}: an array of another dtype"
    elif c_type == "long long":
        assert type(value) is np.int64, f"{where}: got {type(value).__name__}, not numpy.int64"
    elif c_type == "T":
        assert type(value) is dtype.type, f"{where}: got {type(value).__name__}, not {dtype}"
    else:  # pragma: no cover - a new parameter type needs a rule here
        raise AssertionError(f"{where}: no rule for this C type")


def _check_launch(kernel, grid, block):
    assert isinstance(grid, tuple) and isinstance(block, tuple), f"{kernel}: grid and block must be tuples"
    assert 1 <= len(grid) <= 3 and 1 <= len(block) <= 3
    assert all(isinstance(g, int) and g >= 1 for g in grid + block), f"{kernel}: grid {grid}, block {block}"
    assert int(np.prod(block)) <= 1024, f"{kernel}: {block} is more than 1024 threads"
    assert grid[0] < 2**31 and all(g <= 65535 for g in grid[1:]), f"{kernel}: grid {grid} exceeds CUDA's limits"


class FakeKernel:
    """A kernel that checks its launch against the C signature, then runs its numpy emulation."""

    def __init__(self, name, dtype, signature, launches):
        self.name, self.dtype, self.signature, self.launches = name, np.dtype(dtype), signature, launches

    def __call__(self, grid, block, args):
        _check_launch(self.name, grid, block)
        assert len(args) == len(self.signature), (
            f"{self.name} takes {len(self.signature)} arguments, launched with {len(args)}")
        for (c_type, name), value in zip(self.signature, args):
            _check_arg(self.name, c_type, name, value, self.dtype)
        self.launches.append((self.name, grid, block))
        _operation(self.name)
        arguments = {name: on_host(value) for (_, name), value in zip(self.signature, args)}
        capture = _CAPTURE["active"]
        if capture is not None:
            for (c_type, _), value in zip(self.signature, args):
                for written in _written_by(c_type, value):
                    capture.before_write(written)
            capture.record(lambda: EMULATIONS[self.name](**arguments))      # by-value arguments frozen, as in a graph
        EMULATIONS[self.name](**arguments)


def _written_by(c_type, value):
    """The arrays a kernel argument lets the kernel write: a non-const pointer's, a tensor table's."""
    if c_type == "TensorGroup":
        count = int(value["count"][0])
        return [_ADDRESSES[int(a)] for a in value["array"][0, :, :count].reshape(-1)]
    c_type = c_type.replace("__restrict__", "").strip()
    return [value] if c_type.endswith("*") and "const" not in c_type else []


#: device address -> the (host view of the) array there, for the fake kernels that take tables of arrays
_ADDRESSES = {}


def fake_pointer(array):
    """A replacement for ``loader.pointer``: the array's address, remembered so an emulation can find it."""
    assert isinstance(array, DeviceArray) and array.flags.c_contiguous, "a table entry must be a device array"
    address = array.__array_interface__["data"][0]
    _ADDRESSES[address] = on_host(array)
    return address


def fake_function_factory(launches):
    """A replacement for ``loader.function`` that records launches into the list ``launches``."""
    cache = {}

    def function(source, kernel, dtype):
        loader.c_type(dtype, loader.SOURCES[source], kernel)        # the real dtype dispatch rule
        if source not in cache:
            cache[source] = signatures(source)
        return FakeKernel(kernel, dtype, cache[source][kernel], launches)
    return function


# -- device arrays that count what the GPU would do ------------------------------------------------
class DeviceLog:
    """What one fake GPU was asked to do: ``operations`` (kernels, cuBLAS calls, fills, copies and
    transfers, each one command on the GPU's stream) and ``syncs`` (host reads that wait for the GPU)."""

    def __init__(self):
        self.operations, self.syncs = [], []

    def clear(self):
        self.operations.clear()
        self.syncs.clear()


_LOG = {"current": DeviceLog()}


def _operation(kind):
    _LOG["current"].operations.append(kind)


def _sync(kind):
    _not_capturing(f"a host read of device data ({kind})")
    _LOG["current"].syncs.append(kind)


def _advanced(index):
    """Whether ``index`` uses integer or boolean arrays (a gather, which is a kernel on a GPU)."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (np.ndarray, list)) for p in parts)


class DeviceArray(np.ndarray):
    """A numpy array standing for GPU memory: copies, casts, fills, gathers and writes are logged as
    device operations, and reading a value on the host (``item``, ``float``, ``bool``...) as a sync."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """Arithmetic on device arrays is a CuPy kernel (index bookkeeping, for example): logged."""
        _operation(f"cupy {ufunc.__name__}")
        plain = [on_host(x) for x in inputs]
        outputs = kwargs.get("out")
        if outputs is not None:
            kwargs["out"] = tuple(on_host(x) for x in outputs)
            for out in kwargs["out"]:
                _before_write(out)
        compute = lambda: getattr(ufunc, method)(*plain, **kwargs)      # noqa: E731
        result = compute()
        if outputs is not None:                 # in place: the device arrays it wrote
            _record(compute)
            return outputs[0] if len(outputs) == 1 else outputs
        return _made(on_device(result), compute) if isinstance(result, np.ndarray) else result

    def copy(self, order="C"):
        _operation("copy")
        host = on_host(self)
        return _made(on_device(host.copy(order)), lambda: host)

    def reshape(self, *shape, order="C"):
        """A view where numpy makes one; otherwise a copy, which CuPy makes with a kernel (so a graph replays it)."""
        result = super().reshape(*shape, order=order)
        if result.size and not np.may_share_memory(result, self):
            _operation("copy")
            host = on_host(self)
            return _made(on_device(on_host(result)), lambda: host.reshape(*shape, order=order))
        return result

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        if copy or np.dtype(dtype) != self.dtype:
            _operation("astype")
            host = on_host(self)
            return _made(on_device(host.astype(dtype, order, casting)), lambda: host)
        return self

    def fill(self, value):
        _operation("fill")
        host = on_host(self)
        _before_write(host)
        _record(lambda: host.fill(value))
        host.fill(value)

    def __getitem__(self, index):
        if _advanced(index):
            _operation("gather")
            host = on_host(self)
            return _made(on_device(host[index]), lambda: host[index])
        return super().__getitem__(index)

    def __setitem__(self, index, value):
        _operation("setitem")
        host, plain = on_host(self), on_host(value)
        _before_write(host)
        _record(lambda: host.__setitem__(index, plain))
        host[index] = plain

    def set(self, host, stream=None):
        """cupy.ndarray.set: an upload from the host into this array (asynchronous on ``stream``)."""
        _not_capturing("an upload from pageable host memory")
        assert _GRAPH_POOL.get(id(_root(self))) is not _root(self), (
            "an upload into an array allocated while recording a graph: its memory may also serve an "
            "intermediate that the graph writes earlier in the step, over what was uploaded")
        _operation("upload")
        on_host(self)[...] = host

    def item(self, *args):
        _sync("item")
        return super().item(*args)

    def __float__(self):
        _sync("float")
        return super().__float__()

    def __int__(self):
        _sync("int")
        return super().__int__()

    def __index__(self):
        _sync("index")
        return super().__index__()

    def __bool__(self):
        _sync("bool")
        return super().__bool__()


def on_device(value):
    """A new DeviceArray holding ``value`` (arrays only; scalars and None pass through). Like a fresh
    CuPy result it owns its memory (``base`` is None)."""
    if not isinstance(value, np.ndarray):
        return value
    fresh = DeviceArray(value.shape, value.dtype)
    fresh.view(np.ndarray)[...] = value
    return fresh


def device_view(value):
    """``value`` (a view of a device array) as a DeviceArray view."""
    return value.view(DeviceArray) if isinstance(value, np.ndarray) else value


def on_host(value):
    """A plain-ndarray view of a DeviceArray (the same memory), for the emulations' own numpy work."""
    return value.view(np.ndarray) if isinstance(value, DeviceArray) else value


# -- numpy emulations of each kernel's contract (the comments in the .cu files) -------------------
def _rows(a, rows, cols):
    return a.reshape(-1)[: int(rows) * int(cols)].reshape(int(rows), int(cols))


def _bias_activation(z, bias, rows, cols, has_bias, activation):
    z2 = _rows(z, rows, cols)
    z2[...] = REFERENCE._activate(z2 + (bias if has_bias else 0), ACTIVATION_NAMES[int(activation)])


def _activation_grad_bias(out, grad_out, dz, partial_b, rows, cols, activation):
    a, g = _rows(out, rows, cols), _rows(grad_out, rows, cols)
    d = REFERENCE.activation_backward(a, g, ACTIVATION_NAMES[int(activation)], 1)
    _rows(dz, rows, cols)[...] = d
    block_rows = partial_b.size // int(cols)        # block row y sums rows y*8 + 8*block_rows*k + w
    row_block = (np.arange(int(rows)) // 8) % block_rows
    for y in range(block_rows):
        partial_b.reshape(block_rows, int(cols))[y] = d[row_block == y].sum(axis=0)


def _softmax_rows(x, bias, out, rows, cols, has_bias, log_output):
    v = _rows(x, rows, cols) + (bias if has_bias else 0)
    _rows(out, rows, cols)[...] = REFERENCE.log_softmax(v, 1) if log_output else REFERENCE.softmax(v, 1)


def _softmax_grad_rows(out, grad_out, dz, rows, cols):
    a, g = _rows(out, rows, cols), _rows(grad_out, rows, cols)
    _rows(dz, rows, cols)[...] = REFERENCE.activation_backward(a, g, "softmax", 1)


def _xent(logits, targets, losses, grad, rows, cols, need_grad):
    row_losses, row_grad = REFERENCE.softmax_cross_entropy(_rows(logits, rows, cols), targets, bool(need_grad))
    losses[...] = row_losses
    if need_grad:
        _rows(grad, rows, cols)[...] = row_grad


def _xent_dense(logits, targets, losses, grad, rows, cols, need_grad):
    _xent(logits, _rows(targets, rows, cols), losses, grad, rows, cols, need_grad)


def _xent_index(logits, labels, losses, grad, rows, cols, need_grad):
    bad = (labels < 0) | (labels >= int(cols))           # the kernel's contract: a NaN row, no read outside
    _xent(logits, np.where(bad, 0, labels), losses, grad, rows, cols, need_grad)
    losses[bad] = np.nan
    if need_grad:
        _rows(grad, rows, cols)[bad] = np.nan


def _combine(values, op, axis):
    return values.sum(axis=axis, dtype=values.dtype) if op == 0 else values.max(axis=axis)


def _reduce_rows(x, out, rows, cols, total, op):
    flat = x.reshape(-1)[: int(total)]
    for r in range(int(rows)):
        out[r] = _combine(flat[r * int(cols): (r + 1) * int(cols)], op, None)


def _reduce_middle(x, out, outer, reduced, inner, chunk, op):
    outer, reduced, inner, chunk = int(outer), int(reduced), int(inner), int(chunk)
    x3 = x.reshape(outer, reduced, inner)
    chunks = -(-reduced // chunk)
    parts = [_combine(x3[:, c * chunk:(c + 1) * chunk], op, 1) for c in range(chunks)]
    out.reshape(outer, chunks, inner)[...] = np.stack(parts, axis=1)


def _argmax_segments(x, values, indices, segments, length, total):
    flat = x.reshape(-1)[: int(total)]
    for s in range(int(segments)):
        piece = flat[s * int(length): (s + 1) * int(length)]
        indices[s] = s * int(length) + np.argmax(piece)
        values[s] = piece[indices[s] - s * int(length)]


def _argmax_rows(x, out, rows, cols):
    out.reshape(-1)[...] = np.argmax(_rows(x, rows, cols), axis=1)


def _argmax_middle(x, out, outer, reduced, inner):
    out.reshape(int(outer), int(inner))[...] = np.argmax(x.reshape(int(outer), int(reduced), int(inner)), axis=1)


def _argmax_hits(x, out, rows, cols, classes_of):
    """Block b's count of rows whose argmax is the target's class: the rows its warps take (reduce.cu)."""
    hits = np.argmax(_rows(x, rows, cols), axis=1) == classes_of(int(rows), int(cols))
    blocks = out.size
    owner = (np.arange(int(rows)) // 8) % blocks                 # WARPS_PER_BLOCK warps per block, one row each
    out[...] = [np.count_nonzero(hits[owner == b]) for b in range(blocks)]


def _argmax_hits_labels(x, labels, out, rows, cols):
    _argmax_hits(x, out, rows, cols, lambda r, c: labels.reshape(-1)[:r])


def _argmax_hits_rows(x, targets, out, rows, cols):
    _argmax_hits(x, out, rows, cols, lambda r, c: np.argmax(_rows(targets, r, c), axis=1))


def _scatter_add(target, positions, values, n):
    np.add.at(target, positions, values)


def _scatter_add_sorted(target, sorted_positions, order, values, n):
    assert np.all(np.diff(sorted_positions) >= 0), "scatter_add_sorted: positions must come sorted"
    np.add.at(target, sorted_positions, values[order])


# the optimizer kernels' contract is the reference's step on packed scalars (optimizer_scalars.py)
def _sgd_update(param, grad, velocity, n, lr, momentum, decay, use_momentum, nesterov):
    REFERENCE._sgd_step(param, grad, velocity, SGDScalars(lr, momentum, decay), use_momentum, nesterov)


def _adam_update(param, grad, m, v, v_max, n, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, decay, amsgrad):
    scalars = AdamScalars(alpha, one_minus_beta_1, one_minus_beta_2, epsilon, decay)
    REFERENCE._adam_step(param, grad, m, v, v_max, scalars, amsgrad)


def _rmsprop_update(param, grad, mean_square, mean_grad, velocity, n, lr, rho, one_minus_rho, momentum, epsilon,
                    decay, centered, use_momentum):
    scalars = RMSpropScalars(lr, rho, one_minus_rho, momentum, epsilon, decay)
    REFERENCE._rmsprop_step(param, grad, mean_square, mean_grad, velocity, scalars, centered, use_momentum)


def _adam_update_many(group, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, decay, amsgrad):
    count, start = int(group["count"][0]), group["start"][0]
    for t in range(count):
        size = int(start[t + 1] - start[t])
        param, grad, m, v, v_max = (_ADDRESSES[int(a)].reshape(-1)[:size] for a in group["array"][0, :, t])
        _adam_update(param, grad, m, v, v_max, size, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, decay,
                     amsgrad)


def _adagrad_update(param, grad, accumulator, n, lr, epsilon, decay):
    REFERENCE._adagrad_step(param, grad, accumulator, AdagradScalars(lr, epsilon, decay))


def _adamax_update(param, grad, m, u, n, step_size, one_minus_beta_1, beta_2, epsilon, decay):
    REFERENCE._adamax_step(param, grad, m, u, AdamaxScalars(step_size, one_minus_beta_1, beta_2, epsilon, decay))


def _nadam_update(param, grad, m, v, n, momentum_step, gradient_step, one_minus_beta_1, one_minus_beta_2,
                  velocity_scale, epsilon, decay):
    REFERENCE._nadam_step(param, grad, m, v, NadamScalars(momentum_step, gradient_step, one_minus_beta_1,
                                                          one_minus_beta_2, velocity_scale, epsilon, decay))


def _lion_update(param, grad, m, n, lr, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, decay):
    REFERENCE._lion_step(param, grad, m, LionScalars(lr, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, decay))


def _adadelta_update(param, grad, accumulated_grad, accumulated_delta, n, lr, rho, one_minus_rho, epsilon, decay):
    REFERENCE._adadelta_step(param, grad, accumulated_grad, accumulated_delta,
                             AdadeltaScalars(lr, rho, one_minus_rho, epsilon, decay))


def _ftrl_update(param, grad, accumulator, linear, n, lr, power, two_l2_shrinkage, two_l2, l1, decay):
    REFERENCE._ftrl_step(param, grad, accumulator, linear, FtrlScalars(lr, power, two_l2_shrinkage, two_l2, l1, decay))


# the *_at kernels: the same updates, their scalars read from a device array (when the kernel runs)
def _sgd_update_at(param, grad, velocity, n, s, use_momentum, nesterov):
    _sgd_update(param, grad, velocity, n, *s, use_momentum, nesterov)


def _adam_update_at(param, grad, m, v, v_max, n, s, amsgrad):
    _adam_update(param, grad, m, v, v_max, n, *s, amsgrad)


def _adam_update_many_at(group, s, amsgrad):
    _adam_update_many(group, *s, amsgrad)


def _rmsprop_update_at(param, grad, mean_square, mean_grad, velocity, n, s, centered, use_momentum):
    _rmsprop_update(param, grad, mean_square, mean_grad, velocity, n, *s, centered, use_momentum)


def _adagrad_update_at(param, grad, accumulator, n, s):
    _adagrad_update(param, grad, accumulator, n, *s)


def _adamax_update_at(param, grad, m, u, n, s):
    _adamax_update(param, grad, m, u, n, *s)


def _nadam_update_at(param, grad, m, v, n, s):
    _nadam_update(param, grad, m, v, n, *s)


def _lion_update_at(param, grad, m, n, s):
    _lion_update(param, grad, m, n, *s)


def _adadelta_update_at(param, grad, accumulated_grad, accumulated_delta, n, s):
    _adadelta_update(param, grad, accumulated_grad, accumulated_delta, n, *s)


def _ftrl_update_at(param, grad, accumulator, linear, n, s):
    _ftrl_update(param, grad, accumulator, linear, n, *s)


def _gemm_tiled(a, b, c, m, n, kdim, lda, ldb, trans_a, trans_b, stride_a, stride_b, stride_c):
    m, n, k, lda, ldb = (int(v) for v in (m, n, kdim, lda, ldb))
    batch = c.size // (m * n)
    for z in range(batch):
        a_mat = a.reshape(-1)[z * int(stride_a):][: (k if trans_a else m) * lda].reshape(-1, lda)
        b_mat = b.reshape(-1)[z * int(stride_b):][: (n if trans_b else k) * ldb].reshape(-1, ldb)
        op_a = a_mat[:k, :m].T if trans_a else a_mat[:m, :k]
        op_b = b_mat[:n, :k].T if trans_b else b_mat[:k, :n]
        c.reshape(-1)[z * int(stride_c):][: m * n] = (op_a @ op_b).reshape(-1)


# windows.cu: the forwards are the reference's; the backwards gather through the inverse table
# (order, starts) exactly as the kernels do, so a wrong inverse fails here too.
def _maps(a, n, middle, channels):
    return a.reshape(int(n), int(middle), int(channels))


def _window_gather(x, positions, out, n, size, entries, channels, fill):
    _maps(out, n, entries, channels)[...] = REFERENCE.window_gather(_maps(x, n, size, channels), positions, fill)


def _readers(order, starts, p):
    return order[starts[p]:starts[p + 1]]


def _window_scatter(grad, order, starts, out, n, size, entries, channels):
    g, o = _maps(grad, n, entries, channels), _maps(out, n, size, channels)
    for p in range(int(size)):
        o[:, p] = g[:, _readers(order, starts, p)].sum(axis=1)


def _max_pool(x, positions, out, chosen, n, size, windows, window, channels):
    values, where = REFERENCE.max_pool(_maps(x, n, size, channels), positions, int(window))
    _maps(out, n, windows, channels)[...], _maps(chosen, n, windows, channels)[...] = values, where


def _max_pool_backward(grad, chosen, order, starts, out, n, size, windows, window, channels):
    g, c, o = _maps(grad, n, windows, channels), _maps(chosen, n, windows, channels), _maps(out, n, size, channels)
    for p in range(int(size)):
        w = _readers(order, starts, p) // int(window)
        o[:, p] = np.where(c[:, w] == p, g[:, w], 0).sum(axis=1)


def _average_pool(x, positions, out, n, size, windows, window, channels):
    _maps(out, n, windows, channels)[...] = REFERENCE.average_pool(_maps(x, n, size, channels), positions, int(window))


def _average_pool_backward(grad, positions, order, starts, out, n, size, windows, window, channels):
    g, o = _maps(grad, n, windows, channels), _maps(out, n, size, channels)
    counts = (positions.reshape(-1, int(window)) < int(size)).sum(axis=1).astype(g.dtype)
    for p in range(int(size)):
        w = _readers(order, starts, p) // int(window)
        o[:, p] = (g[:, w] / counts[w][None, :, None]).sum(axis=1)


# norm.cu: per-chunk double partials and their ordered merge, as the kernels make them
def _chunks(rows, chunk_rows):
    return [(start, min(start + int(chunk_rows), int(rows))) for start in range(0, int(rows), int(chunk_rows))]


def _column_moments(x, partials, rows, cols, chunk_rows):
    x2 = _rows(x, rows, cols).astype(np.float64)
    for k, (start, stop) in enumerate(_chunks(rows, chunk_rows)):
        mean = x2[start:stop].mean(axis=0)
        partials[k] = mean, ((x2[start:stop] - mean) ** 2).sum(axis=0)


def _merge_column_moments(partials, out, chunks, rows, cols, chunk_rows):
    mean, m2, seen = partials[0, 0].copy(), partials[0, 1].copy(), min(int(chunk_rows), int(rows))
    for k in range(1, int(chunks)):
        count = min(int(chunk_rows), int(rows) - k * int(chunk_rows))
        d = partials[k, 0] - mean
        mean += d * count / (seen + count)
        m2 += partials[k, 1] + d * d * seen * count / (seen + count)
        seen += count
    out[0], out[1] = mean, m2 / int(rows)


def _row_moments(x, out, rows, cols):
    x2 = _rows(x, rows, cols).astype(np.float64)
    out[0], out[1] = x2.mean(axis=1), x2.var(axis=1)


def _normalize(x, mean, variance, gamma, beta, out, rows, cols, has_gamma, has_beta, per_row, epsilon):
    _rows(out, rows, cols)[...] = REFERENCE.normalize(_rows(x, rows, cols), mean, variance, gamma if has_gamma else None,
                                                      beta if has_beta else None, epsilon, int(per_row))


def _column_gradient_sums(x, grad, mean, variance, partials, rows, cols, chunk_rows, per_row, epsilon):
    xhat, _ = REFERENCE._normalized(_rows(x, rows, cols), mean, variance, epsilon, int(per_row))
    g = _rows(grad, rows, cols).astype(np.float64)
    for k, (start, stop) in enumerate(_chunks(rows, chunk_rows)):
        partials[k] = g[start:stop].sum(axis=0), (g[start:stop] * xhat[start:stop]).sum(axis=0)


def _finish_gradient_sums(partials, dgamma, dbeta, chunks, cols):
    dbeta[...], dgamma[...] = partials[:int(chunks), 0].sum(axis=0), partials[:int(chunks), 1].sum(axis=0)


def _normalize_dx_columns(x, grad, mean, variance, gamma, dgamma, dbeta, dx, rows, cols, has_gamma, through, epsilon):
    dx2, _, _ = REFERENCE.normalize_backward(_rows(x, rows, cols), mean, variance, gamma if has_gamma else None,
                                             _rows(grad, rows, cols), epsilon, 0, bool(through))
    _rows(dx, rows, cols)[...] = dx2


def _normalize_dx_rows(x, grad, mean, variance, gamma, dx, rows, cols, has_gamma, epsilon):
    dx2, _, _ = REFERENCE.normalize_backward(_rows(x, rows, cols), mean, variance, gamma if has_gamma else None,
                                             _rows(grad, rows, cols), epsilon, 1, True)
    _rows(dx, rows, cols)[...] = dx2


# -- recurrent.cu: each step through the reference's own step functions (recurrent_reference.py) ---------------
def _act_name(code):
    return ACTIVATION_NAMES[int(code)]


def _steps(a, n, width):
    return a.reshape(-1, n, width)


def _previous(states, k, n, u):
    return _steps(states, n, u)[k - 1] if k > 0 else np.zeros((n, u), states.dtype)


def _step_grad(grad, dh_next, k, steps, n, u, all_steps):
    if all_steps:
        outside = _steps(grad, n, u)[k]
    else:
        outside = grad.reshape(n, u) if k == steps - 1 else np.zeros((n, u), dh_next.dtype)
    return (outside + dh_next.reshape(n, u)).astype(dh_next.dtype)


def _rnn_step(p, q, states, t, k, n, u, activation):
    _steps(states, n, u)[k] = recurrent_reference.simple_rnn_step(REFERENCE, _steps(p, n, u)[t], q.reshape(n, u),
                                                                  _act_name(activation))


def _lstm_step(p, q, cache, states, t, k, n, u, activation, recurrent_activation):
    c_prev = _steps(cache, n, 6 * u)[k - 1][:, 4 * u:5 * u] if k > 0 else np.zeros((n, u), p.dtype)
    h, _, step_cache = recurrent_reference.lstm_step(REFERENCE, _steps(p, n, 4 * u)[t], q.reshape(n, 4 * u), c_prev,
                                                     _act_name(activation), _act_name(recurrent_activation))
    _steps(states, n, u)[k], _steps(cache, n, 6 * u)[k] = h, step_cache


def _gru_step(p, q, bias, cache, states, t, k, n, u, has_bias, activation, recurrent_activation):
    x, q = _steps(p, n, 3 * u)[t], q.reshape(n, 3 * u)
    if has_bias:
        x, q = x + bias.reshape(2, 3 * u)[0], q + bias.reshape(2, 3 * u)[1]
    h, step_cache = recurrent_reference.gru_step(REFERENCE, x, q, _previous(states, k, n, u), _act_name(activation),
                                                 _act_name(recurrent_activation))
    _steps(states, n, u)[k], _steps(cache, n, 4 * u)[k] = h, step_cache


def _gru_gates_step(p, q, cache, states, reset_state, t, k, n, u, recurrent_activation):
    z, r, reset = recurrent_reference.gru_gates_step(REFERENCE, _steps(p, n, 3 * u)[t], q.reshape(n, 2 * u),
                                                     _previous(states, k, n, u), _act_name(recurrent_activation))
    row = _steps(cache, n, 4 * u)[k]
    row[:, :u], row[:, u:2 * u], row[:, 3 * u:] = z, r, reset
    reset_state.reshape(n, u)[...] = reset


def _gru_candidate_step(p, product, cache, states, t, k, n, u, activation):
    row = _steps(cache, n, 4 * u)[k]
    h, step_cache = recurrent_reference.gru_candidate_step(
        REFERENCE, _steps(p, n, 3 * u)[t], row[:, :u], row[:, u:2 * u], product.reshape(n, u),
        _previous(states, k, n, u), row[:, 3 * u:].copy(), _act_name(activation))
    _steps(states, n, u)[k], row[...] = h, step_cache


def _rnn_step_backward(states, grad, dh_next, dz, k, steps, n, u, all_steps, activation):
    dh = _step_grad(grad, dh_next, k, steps, n, u, all_steps)
    _steps(dz, n, u)[k] = recurrent_reference.simple_rnn_step_backward(REFERENCE, _steps(states, n, u)[k], dh,
                                                                       _act_name(activation))


def _lstm_step_backward(cache, grad, dh_next, dc_next, dz, k, steps, n, u, all_steps, activation,
                        recurrent_activation):
    c_prev = _steps(cache, n, 6 * u)[k - 1][:, 4 * u:5 * u] if k > 0 else np.zeros((n, u), cache.dtype)
    dz_k, dc_prev = recurrent_reference.lstm_step_backward(
        REFERENCE, _steps(cache, n, 6 * u)[k], c_prev, _step_grad(grad, dh_next, k, steps, n, u, all_steps),
        dc_next.reshape(n, u).copy(), _act_name(activation), _act_name(recurrent_activation))
    _steps(dz, n, 4 * u)[k], dc_next.reshape(n, u)[...] = dz_k, dc_prev


def _gru_step_backward(states, cache, grad, dh_next, dz, dq, direct, k, steps, n, u, all_steps, activation,
                       recurrent_activation):
    dx, dq_k, direct_k = recurrent_reference.gru_step_backward(
        REFERENCE, _steps(cache, n, 4 * u)[k], _previous(states, k, n, u),
        _step_grad(grad, dh_next, k, steps, n, u, all_steps), _act_name(activation), _act_name(recurrent_activation))
    _steps(dz, n, 3 * u)[k], _steps(dq, n, 3 * u)[k], direct.reshape(n, u)[...] = dx, dq_k, direct_k


def _gru_candidate_step_backward(states, cache, grad, dh_next, dz, d_candidates, direct, k, steps, n, u, all_steps,
                                 activation, recurrent_activation):
    dx, direct_k = recurrent_reference.gru_candidate_step_backward(
        REFERENCE, _steps(cache, n, 4 * u)[k], _previous(states, k, n, u),
        _step_grad(grad, dh_next, k, steps, n, u, all_steps), _act_name(activation), _act_name(recurrent_activation))
    row = _steps(dz, n, 3 * u)[k]
    row[:, :u], row[:, 2 * u:] = dx[:, :u], dx[:, 2 * u:]
    d_candidates.reshape(n, u)[...], direct.reshape(n, u)[...] = dx[:, 2 * u:], direct_k


def _gru_reset_step_backward(states, cache, d_reset_state, dz, direct, k, n, u, recurrent_activation):
    row = _steps(dz, n, 3 * u)[k]
    dx, direct_k = recurrent_reference.gru_reset_step_backward(
        REFERENCE, _steps(cache, n, 4 * u)[k], _previous(states, k, n, u), d_reset_state.reshape(n, u), row.copy(),
        direct.reshape(n, u).copy(), _act_name(recurrent_activation))
    row[:, u:2 * u], direct.reshape(n, u)[...] = dx[:, u:2 * u], direct_k


EMULATIONS = {
    "bias_activation": _bias_activation, "activation_grad_bias": _activation_grad_bias,
    "softmax_rows": _softmax_rows, "softmax_grad_rows": _softmax_grad_rows,
    "softmax_xent_dense": _xent_dense, "softmax_xent_index": _xent_index,
    "reduce_rows_warp": _reduce_rows, "reduce_rows_block": _reduce_rows, "reduce_middle": _reduce_middle,
    "argmax_rows": _argmax_rows, "argmax_middle": _argmax_middle, "argmax_segments": _argmax_segments,
    "argmax_hits_labels": _argmax_hits_labels, "argmax_hits_rows": _argmax_hits_rows,
    "scatter_add": _scatter_add, "scatter_add_sorted": _scatter_add_sorted,
    "sgd_update": _sgd_update, "adam_update": _adam_update, "adam_update_many": _adam_update_many, "rmsprop_update": _rmsprop_update,
    "adagrad_update": _adagrad_update, "gemm_tiled": _gemm_tiled,
    "sgd_update_at": _sgd_update_at, "adam_update_at": _adam_update_at, "adam_update_many_at": _adam_update_many_at,
    "rmsprop_update_at": _rmsprop_update_at, "adagrad_update_at": _adagrad_update_at,
    "adamax_update": _adamax_update, "adamax_update_at": _adamax_update_at,
    "nadam_update": _nadam_update, "nadam_update_at": _nadam_update_at, "lion_update": _lion_update,
    "lion_update_at": _lion_update_at, "adadelta_update": _adadelta_update, "adadelta_update_at": _adadelta_update_at,
    "ftrl_update": _ftrl_update, "ftrl_update_at": _ftrl_update_at,
    "window_gather": _window_gather, "window_scatter": _window_scatter, "max_pool": _max_pool,
    "max_pool_backward": _max_pool_backward, "average_pool": _average_pool,
    "average_pool_backward": _average_pool_backward, "column_moments": _column_moments,
    "merge_column_moments": _merge_column_moments, "row_moments": _row_moments, "normalize": _normalize,
    "column_gradient_sums": _column_gradient_sums, "finish_gradient_sums": _finish_gradient_sums,
    "normalize_dx_columns": _normalize_dx_columns, "normalize_dx_rows": _normalize_dx_rows,
    "rnn_step": _rnn_step, "lstm_step": _lstm_step, "gru_step": _gru_step, "gru_gates_step": _gru_gates_step,
    "gru_candidate_step": _gru_candidate_step, "rnn_step_backward": _rnn_step_backward,
    "lstm_step_backward": _lstm_step_backward, "gru_step_backward": _gru_step_backward,
    "gru_candidate_step_backward": _gru_candidate_step_backward, "gru_reset_step_backward": _gru_reset_step_backward,
}

_ELEMENTWISE = {
    "neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh,
    "sigmoid": lambda x: (1 / (1 + np.exp(-x))).astype(x.dtype), "relu": lambda x: np.maximum(x, 0),
    "erf": lambda x: np.vectorize(__import__("math").erf, otypes=[x.dtype])(x),
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "power": np.power,
    "maximum": np.maximum, "minimum": np.minimum, "equal": np.equal, "not_equal": np.not_equal,
    "less": np.less, "less_equal": np.less_equal, "greater": np.greater, "greater_equal": np.greater_equal,
    "where": np.where,
}


def fake_elementwise_kernel(name):
    """A replacement for ``elementwise.kernel``: numpy's function for the operation (one logged kernel)."""
    def run(*operands):
        if not any(isinstance(o, DeviceArray) for o in operands):
            raise ValueError("Loop size is undecided.")     # CuPy's words: its loop runs over device arrays
        _operation(f"elementwise {name}")
        plain = [on_host(o) for o in operands]
        compute = lambda: np.asarray(_ELEMENTWISE[name](*plain))     # noqa: E731
        return _made(on_device(compute()), compute)
    return run


def _upload_or_copy(value, dtype=None, order="K", copy=True):
    """cupy.array: a host array is uploaded (a transfer), a device array copied (a kernel)."""
    if isinstance(value, DeviceArray):
        if not copy:
            return value if dtype is None else value.astype(dtype, copy=False)
        _operation("copy")
    else:
        _not_capturing("an upload from pageable host memory")
        _operation("upload")
    plain = on_host(value)
    compute = lambda: np.array(plain, dtype=dtype, order=order, copy=True)     # noqa: E731
    return _made(on_device(compute()), compute if isinstance(value, DeviceArray) else None)


def _logged(kind, function):
    """``function`` returning a device array, logged as one device operation of ``kind`` (None: an allocation,
    no device work)."""
    def call(*args, **kwargs):
        if kind:
            _operation(kind)
        plain = [on_host(a) for a in args]
        compute = lambda: function(*plain, **kwargs)      # noqa: E731
        return _made(on_device(compute()), compute if kind else None)
    return call


def _views(function):
    """A view-making function (no device work) that keeps its result on the device."""
    return lambda *args, **kwargs: device_view(function(*(on_host(a) for a in args), **kwargs))


def _copyto(destination, source):
    _operation("copy")
    target, plain = on_host(destination), on_host(source)
    _before_write(target)
    _record(lambda: np.copyto(target, plain))
    np.copyto(target, plain)


def _to_host(value):
    _sync("asnumpy")
    return np.array(on_host(value), order="C")      # always a copy, as from a device


_LOGGED_MATMUL = _logged("cublas matmul", np.matmul)


def _cupy_matmul(a, b, **kwargs):
    """cupy.matmul: cuBLAS, which CuPy refuses to call while a stream captures (its words)."""
    if _CAPTURE["active"] is not None:
        raise NotImplementedError("calling cuBLAS API during stream capture is currently unsupported")
    return _LOGGED_MATMUL(a, b, **kwargs)


class FakeCublas:
    """captured_gemm.Cublas on the fake GPU: handles, their streams and workspaces, and GEMMs computed from
    the call's column-major arguments alone (``emulate_gemm``), so a wrong leading dimension or op shows."""

    def __init__(self):
        self.streams, self.workspaces, self.calls = {}, {}, []

    def create(self):
        """A new handle (an integer), on the default stream."""
        handle = len(self.streams) + 1
        self.streams[handle] = 0
        return handle

    def set_stream(self, handle, stream_pointer):
        """As cuBLAS: the handle's later calls on this stream, and its workspace back to cuBLAS's own."""
        self.streams[handle] = stream_pointer
        self.workspaces.pop(handle, None)

    def set_workspace(self, handle, workspace, size):
        assert workspace.nbytes >= size
        self.workspaces[handle] = workspace

    def gemm(self, handle, call, out):
        if _CAPTURE["active"] is not None:
            assert self.streams[handle] != 0, "a GEMM recorded on a handle not set to the capturing stream"
            assert handle in self.workspaces, "a GEMM recorded on a handle without its own workspace"
        _operation("cublas gemm (direct)")
        self.calls.append(call)
        first, second, target = on_host(call.first.array), on_host(call.second.array), on_host(out)
        _before_write(target)
        compute = lambda: emulate_gemm(call, first, second, target)     # noqa: E731
        _record(compute)
        compute()


def _column_major(flat, operand, rows, cols, index):
    """op(X), rows x cols, read from the column-major matrix ``index`` of a batch as cuBLAS reads it."""
    stored_rows, stored_cols = (rows, cols) if operand.op == captured_gemm.OP_N else (cols, rows)
    assert operand.ld >= max(1, stored_rows), f"cuBLAS: leading dimension {operand.ld} < {stored_rows} rows"
    start = index * operand.stride
    assert start + (stored_cols - 1) * operand.ld + stored_rows <= flat.size, "cuBLAS would read past the array"
    stored = np.lib.stride_tricks.as_strided(flat[start:], (stored_rows, stored_cols),
                                             (flat.itemsize, operand.ld * flat.itemsize))
    return stored if operand.op == captured_gemm.OP_N else stored.T


def emulate_gemm(call, first, second, out):
    """What cuBLAS computes for ``call`` (C = op(first) @ op(second), column-major, per batch matrix) into ``out``.

    Each product is made as np.matmul of the row-major matrices those views are (C^T = op(second)^T @
    op(first)^T), which are the very arrays the caller multiplied: the same numbers as np.matmul on them."""
    flat_out = out.reshape(-1)
    result = captured_gemm.Operand(None, call.ldc, captured_gemm.OP_N, call.stride_c)
    for index in range(call.batch):
        a_row_major = _column_major(second.reshape(-1), call.second, call.k, call.n, index).T
        b_row_major = _column_major(first.reshape(-1), call.first, call.m, call.k, index).T
        _column_major(flat_out, result, call.m, call.n, index)[...] = np.matmul(a_row_major, b_row_major).T


def fake_cupy(log=None):
    """A module-like object with the CuPy calls nnengine makes, answered by numpy (one fake GPU).

    Arrays it makes are ``DeviceArray``s; ``log`` (a DeviceLog) receives what the GPU was asked to do.
    """
    _LOG["current"] = log if log is not None else DeviceLog()
    module = types.SimpleNamespace(
        array=_upload_or_copy, asarray=lambda a, dtype=None: _upload_or_copy(a, dtype, copy=False),
        ascontiguousarray=lambda a: a if a.flags.c_contiguous else a.copy(order="C"),
        full=_logged("fill", np.full), zeros=_logged("fill", np.zeros), ones=_logged("fill", np.ones),
        arange=_logged("fill", np.arange), empty=_logged(None, np.empty), empty_like=_logged(None, np.empty_like),
        matmul=_cupy_matmul, broadcast_to=_views(np.broadcast_to),
        swapaxes=_views(np.swapaxes), moveaxis=_views(np.moveaxis), abs=_logged("elementwise abs", np.abs),
        copyto=_copyto,
        asnumpy=_to_host, float32=np.float32, int64=np.int64,
        argsort=_logged("cupy argsort", lambda a: np.argsort(a, kind="stable")),     # CuPy's sort is stable
        searchsorted=_logged("cupy searchsorted", np.searchsorted))
    module.__version__ = "fake"
    rng = np.random.default_rng(0)
    module.random = types.SimpleNamespace(
        standard_normal=lambda shape, dtype=np.float64: on_device(rng.standard_normal(shape).astype(dtype)),
        randint=lambda low, high, size: on_device(rng.integers(low, high, size)))
    runtime = types.SimpleNamespace(getDevice=lambda: 0, getDeviceCount=lambda: 1, setDevice=lambda i: None,
                                    getDeviceProperties=lambda i: {"name": b"Fake GPU"})
    module.cuda = types.SimpleNamespace(is_available=lambda: True, runtime=runtime, Event=FakeEvent,
                                        get_elapsed_time=lambda start, end: (end.time - start.time) * 1e3,
                                        Device=FakeDevice, get_current_stream=lambda: types.SimpleNamespace(ptr=0),
                                        Stream=FakeStream, MemoryPool=FakeMemoryPool, using_allocator=using_allocator)
    module.concatenate = _logged("concatenate", np.concatenate)
    return module


class FakeDevice:
    """cupy.cuda.Device: a context manager that makes GPU ``index`` current (one fake GPU: nothing to do)."""

    def __init__(self, index=0):
        self.id = index

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def synchronize(self):
        pass

    def use(self):
        pass


def fake_nccl(mpi_comm):
    """cupy.cuda.nccl answered over MPI on the host: a communicator's allReduce finds the device array at
    the address it is given (``fake_pointer``) and sums it across the processes of ``mpi_comm``."""
    from mpi4py import MPI
    calls = []

    class NcclCommunicator:
        def __init__(self, ndev, unique_id, rank):
            assert ndev == mpi_comm.Get_size() and rank == mpi_comm.Get_rank()
            assert unique_id == mpi_comm.bcast(unique_id, root=0), "every rank must get rank 0's unique id"
            calls.append(("init", unique_id))

        def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
            assert sendbuf == recvbuf and op == 0 and datatype in (7, 8)
            array = _ADDRESSES[int(sendbuf)].reshape(-1)[:count]
            assert array.dtype == (np.float32 if datatype == 7 else np.float64)
            mpi_comm.Allreduce(MPI.IN_PLACE, array, op=MPI.SUM)
            calls.append(("allReduce", count))

    unique = f"uid-{mpi_comm.Get_rank()}-{time.time()}".encode()
    return types.SimpleNamespace(available=True, NCCL_FLOAT32=7, NCCL_FLOAT64=8, NCCL_SUM=0, calls=calls,
                                 get_unique_id=lambda: unique, NcclCommunicator=NcclCommunicator)


class FakeEvent:
    """A CUDA event that records the host clock (the fake GPU computes synchronously)."""

    def record(self):
        self.time = time.perf_counter()

    def synchronize(self):
        pass


# -- stream capture: a CUDA Graph records instead of running ---------------------------------------
_CAPTURE = {"active": None, "allocator": None}
#: id -> array, of the arrays made while a graph was recorded (memory of a graph's own pool)
_GRAPH_POOL = weakref.WeakValueDictionary()


class FakeCapture:
    """What a capturing stream was asked to do, as closures over the same arrays (a graph's addresses) and
    the same by-value arguments (frozen, as a graph freezes them).

    A real capture runs nothing. The fake runs each operation at once as well (the next one needs its
    shapes), and undoes that when the capture ends: arrays that existed are restored, and arrays made
    during the capture are filled with garbage (NaN), so a result read before the graph's first launch,
    or an update that ran while recording, shows.
    """

    def __init__(self):
        self.operations, self.saved, self.made = [], [], {}

    def made_array(self, array):
        assert _CAPTURE["allocator"] is not None, (
            "an array allocated while recording a graph must come from a memory pool of the graph's own "
            "(cupy.cuda.using_allocator): freed to the shared pool, its memory could be handed out again "
            "while the graph still writes it")
        self.made[id(array)] = array

    def before_write(self, array):
        if id(_root(array)) not in self.made:
            self.saved.append((array, np.array(array, copy=True)))

    def record(self, operation):
        self.operations.append(operation)

    def finish(self):
        for array, content in reversed(self.saved):
            array[...] = content
        _GRAPH_POOL.update(self.made)
        for array in self.made.values():
            host = on_host(array)
            host[...] = np.nan if host.dtype.kind in "fc" else (True if host.dtype == bool else -12345)


def _root(array):
    while isinstance(array, np.ndarray) and array.base is not None and isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _made(result, compute):
    """``result``, a new device array; while capturing, remembered (and its computation recorded)."""
    capture = _CAPTURE["active"]
    if capture is not None and isinstance(result, np.ndarray):
        capture.made_array(result)
        if compute is not None:
            host = on_host(result)
            capture.record(lambda: host.__setitem__(Ellipsis, compute()))
    return result


def _before_write(array):
    if _CAPTURE["active"] is not None:
        _CAPTURE["active"].before_write(array)


def _record(operation):
    if _CAPTURE["active"] is not None:
        _CAPTURE["active"].record(operation)


def _not_capturing(what):
    if _CAPTURE["active"] is not None:
        raise RuntimeError(f"cudaErrorStreamCaptureUnsupported: {what} while a stream captures")


class FakeGraph:
    """cupy.cuda.Graph: ``launch`` runs every recorded operation in order, as ONE device operation."""

    def __init__(self, operations):
        self.operations = operations

    def launch(self, stream=None):
        assert _CAPTURE["active"] is None, "a graph launched while a stream captures"
        _operation("graph launch")
        for operation in self.operations:
            operation()


class FakeStream:
    """cupy.cuda.Stream: current inside ``with``; ``begin_capture``/``end_capture`` record a FakeGraph."""

    def __init__(self, non_blocking=False):
        self.capture = None
        self.ptr = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def begin_capture(self, mode=None):
        assert _CAPTURE["active"] is None, "a stream already captures"
        self.capture = _CAPTURE["active"] = FakeCapture()

    def is_capturing(self):
        return self.capture is not None

    def end_capture(self):
        capture, self.capture = self.capture, None
        _CAPTURE["active"] = None
        capture.finish()
        return FakeGraph(capture.operations)


class FakeMemoryPool:
    """cupy.cuda.MemoryPool: the fake allocates with numpy; ``malloc`` only stands for the pool."""

    def malloc(self, size):       # pragma: no cover - never called: numpy allocates the fake's arrays
        raise AssertionError("the fake allocates with numpy")


class using_allocator:          # noqa: N801 - the name of CuPy's function
    """cupy.cuda.using_allocator: while inside, arrays come from ``allocator``."""

    def __init__(self, allocator=None):
        self.allocator = allocator

    def __enter__(self):
        self.previous, _CAPTURE["allocator"] = _CAPTURE["allocator"], self.allocator
        return self

    def __exit__(self, *exc_info):
        _CAPTURE["allocator"] = self.previous
        return False


class ImmediateSlots:
    """Scalar slots made and uploaded as they are taken: the ``*_at`` update kernels run eagerly (set one as a
    backend's ``graph_recording.slots`` to launch them outside a graph)."""

    def __init__(self, cupy):
        self.cupy = cupy

    def take(self, scalars):
        array = self.cupy.empty(len(scalars), type(scalars[0]))
        array.set(np.array(scalars, dtype=array.dtype))
        return array
