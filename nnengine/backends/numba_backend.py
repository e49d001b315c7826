"""The numba CPU backend: every compute primitive runs our own kernels from ``nnengine.kernels.cpu``.

What stays numpy's own: transfers, creation, copies, casts and views (from_numpy,
to_numpy, full, copy, astype, ascontiguous, assign, reshape, transpose, broadcast_to,
getitem), as the design asks: views are the array library's, and kernels
receive contiguous arrays. Every other primitive is a numba kernel; this module
only prepares arguments (contiguity, broadcasting, loop shapes, serial or
parallel variant, typed constants) and allocates outputs.

Matrix products go to BLAS through numpy by default and to our own GEMM (``kernels/cpu/gemm.py``)
with ``NNENGINE_GEMM=numba``; small dense layers run entirely inside one fused kernel either way.
Large outputs come from ``host_buffers`` (mapped memory, reused once nothing refers to it).

The kernel modules are reached through ``kernels/cpu/aot.py``'s proxies: a small model's kernels, built
ahead of time at install, run from there while numba is not loaded (and bitwise as numba's do), so a
short program never imports numba; any other kernel imports numba at its first use.

Threads: any number of Python threads may compute on this backend at once. Serial kernels run
concurrently; a parallel (prange) kernel holds one lock while it runs, because numba's workqueue
threading layer aborts the process when two threads launch parallel kernels at the same time
(docs/reliability.md gives the measurements behind that choice).
"""
import numpy as np

from ..kernels.activation_codes import ACTIVATION_CODES
from ..kernels.cpu import aot, blas_library, config, op_codes
from . import host_buffers
from .base import Backend
from .deferred_lowering import DeferredLowering
from .layout import gather_along_axis, middle_broadcast, kept_shape, three_axes, trailing_row, zero_one
from .numba_updates import NumbaUpdatePrimitives

# the kernel modules, through the ahead-of-time tier (kernels/cpu/aot.py): a kernel built ahead of time runs
# without numba while numba is not loaded; any other name imports numba and its kernel module
blas, elementwise, gemm, nn, reduce = aot.kernel_modules("blas", "elementwise", "gemm", "nn", "reduce")

#: primitives this backend takes from the numpy reference: the array library's own transfers and views
NUMPY_PRIMITIVES = ("from_numpy", "to_numpy", "full", "copy", "astype", "ascontiguous", "assign", "reshape",
                    "transpose", "broadcast_to", "getitem")

#: the elementwise operations whose numpy ufunc gives bitwise the kernel's result (IEEE: one correctly
#: rounded operation per element; maximum and minimum propagate NaN as the kernels do)
_EXACT_OPS = {op_codes.ADD: np.add, op_codes.SUB: np.subtract, op_codes.MUL: np.multiply,
              op_codes.DIV: np.divide, op_codes.MAX: np.maximum, op_codes.MIN: np.minimum}


def _flat(x):
    """A contiguous 1-D view (a copy only when x is not contiguous)."""
    return np.ascontiguousarray(x).reshape(-1)


#: the unary codes and fused activations whose kernels stream (config.PARALLEL_MIN_STREAMING_ELEMENTS)
_STREAMING_UNARY = frozenset({op_codes.NEG, op_codes.RELU})
_STREAMING_ACTIVATIONS = frozenset({ACTIVATION_CODES["none"], ACTIVATION_CODES["relu"]})
#: the row kernels that take an exp and have a variant with libm's exp (``<name>_libm``) for little work
_LIBM_VARIANTS = frozenset({"softmax_rows", "log_softmax_rows", "softmax_cross_entropy_soft",
                            "softmax_cross_entropy_labels"})


def _blas_product(a, b, out):
    """out = a @ b through cblas ?gemm, transposed operands passed as flags (``blas_library.usable(a, b)``)."""
    a, transpose_a = blas_library.operand(a)
    b, transpose_b = blas_library.operand(b)
    blas.gemm(a, b, out, transpose_a, transpose_b)
    return out


# parallel kernels, each launched by one Python thread at a time (see the module docstring)
_unary_parallel = config.OneThreadAtATime(elementwise, "unary_parallel")
_binary_same_parallel = config.OneThreadAtATime(elementwise, "binary_same_parallel")
_gemm_parallel = config.OneThreadAtATime(gemm, "gemm")
_bias_activation_parallel = config.OneThreadAtATime(nn, "bias_activation_parallel")
_activation_grad_parallel = config.OneThreadAtATime(nn, "activation_grad_parallel")
_softmax_rows_parallel = config.OneThreadAtATime(nn, "softmax_rows_parallel")
_log_softmax_rows_parallel = config.OneThreadAtATime(nn, "log_softmax_rows_parallel")
_xent_soft_parallel = config.OneThreadAtATime(nn, "softmax_cross_entropy_soft_parallel")
_xent_labels_parallel = config.OneThreadAtATime(nn, "softmax_cross_entropy_labels_parallel")


def _unary_primitive(name, op):
    """The primitive ``name`` as one call of the unary kernel with operation code ``op`` (Backend's contract)."""
    def primitive(self, x):
        return self._unary(op, x)
    primitive.__name__, primitive.__qualname__ = name, f"NumbaBackend.{name}"
    primitive.__doc__ = getattr(Backend, name).__doc__
    return primitive


class NumbaBackend(NumbaUpdatePrimitives):
    """Every compute primitive as a numba kernel on the CPU (see the module docstring)."""

    name = "numba"

    # -- elementwise -------------------------------------------------------------------
    def _unary(self, op, x):
        out = host_buffers.empty(x.shape, x.dtype)
        if out.size:
            kernel = _unary_parallel if config.parallel(out.size, op in _STREAMING_UNARY) else elementwise.unary
            kernel(op, _flat(x), out.reshape(-1), *zero_one(x.dtype))
        return out

    neg = _unary_primitive("neg", op_codes.NEG)
    log = _unary_primitive("log", op_codes.LOG)
    sqrt = _unary_primitive("sqrt", op_codes.SQRT)
    tanh = _unary_primitive("tanh", op_codes.TANH)
    sigmoid = _unary_primitive("sigmoid", op_codes.SIGMOID)
    relu = _unary_primitive("relu", op_codes.RELU)
    erf = _unary_primitive("erf", op_codes.ERF)

    def exp(self, x):
        if x.dtype != np.float32 or x.size == 0:
            return self._unary(op_codes.EXP, x)
        out = host_buffers.empty(x.shape, x.dtype)
        elementwise.exp32(_flat(x), out.reshape(-1), host_buffers.empty(x.size, np.float32))
        return out

    def _broadcast(self, a, b, out, same, scalar, rows, middle):
        """Run the loop shape that fits a and b (see kernels/cpu/elementwise.py); fill ``out``."""
        if out.size == 0:
            return out
        if a.shape == out.shape and b.shape == out.shape:
            same(_flat(a), _flat(b), out.reshape(-1))
            return out
        for big, small, small_left in ((a, b, False), (b, a, True)):
            if big.shape != out.shape:
                continue
            split = middle_broadcast(small.shape, out.shape)
            if small.size == 1:
                scalar(_flat(big), small.reshape(-1)[0], out.reshape(-1), small_left)
            elif trailing_row(small.shape, out.shape):
                m = small.size
                rows(np.ascontiguousarray(big).reshape(-1, m), _flat(small), out.reshape(-1, m), small_left)
            elif split is not None:         # small broadcast along one middle axis: (outer, 1, inner)
                middle(np.ascontiguousarray(big).reshape(split), np.ascontiguousarray(small).reshape(split[0], -1),
                       out.reshape(split), small_left)
            else:
                continue
            return out
        same(_flat(np.broadcast_to(a, out.shape)), _flat(np.broadcast_to(b, out.shape)), out.reshape(-1))
        return out

    def _binary(self, op, a, b):
        if op in _EXACT_OPS and max(a.size, b.size) <= config.NUMPY_MAX_ELEMENTS:
            # tiny operands: numpy's ufunc, bitwise the kernel's result (one correctly rounded operation per
            # element) and as fast as a numba dispatch, and the first run compiles no kernel for them
            out = host_buffers.empty(a.shape if a.shape == b.shape else np.broadcast_shapes(a.shape, b.shape), a.dtype)
            with np.errstate(all="ignore"):          # IEEE results in silence, as the kernels give them
                return _EXACT_OPS[op](a, b, out=out)
        streams = op != op_codes.POW                                # + - * / max min stream (config.py)
        if a.shape == b.shape and a.flags.c_contiguous and b.flags.c_contiguous:    # the common case, fast
            out = host_buffers.empty(a.shape, a.dtype)
            if out.size:
                same = _binary_same_parallel if config.parallel(out.size, streams) else elementwise.binary_same
                same(op, a.reshape(-1), b.reshape(-1), out.reshape(-1))
            return out
        out = host_buffers.empty(np.broadcast_shapes(a.shape, b.shape), np.result_type(a, b))
        same = _binary_same_parallel if config.parallel(out.size, streams) else elementwise.binary_same
        return self._broadcast(
            a, b, out, lambda x, y, o: same(op, x, y, o),
            lambda x, s, o, left: elementwise.binary_scalar(op, x, s, o, left),
            lambda x, r, o, left: elementwise.binary_rows(op, x, r, o, left),
            lambda x, y, o, left: elementwise.binary_middle(op, x, y, o, left))

    def add(self, a, b):
        return self._binary(op_codes.ADD, a, b)

    def sub(self, a, b):
        return self._binary(op_codes.SUB, a, b)

    def mul(self, a, b):
        return self._binary(op_codes.MUL, a, b)

    def div(self, a, b):
        return self._binary(op_codes.DIV, a, b)

    def power(self, a, b):
        if a.dtype.kind != "f":
            # integer powers keep numpy's integer semantics (overflow wraps, negative exponents raise)
            return np.power(a, b)
        return self._binary(op_codes.POW, a, b)

    def maximum(self, a, b):
        return self._binary(op_codes.MAX, a, b)

    def minimum(self, a, b):
        return self._binary(op_codes.MIN, a, b)

    def _compare(self, op, a, b):
        out = host_buffers.empty(np.broadcast_shapes(a.shape, b.shape), np.bool_)
        return self._broadcast(
            a, b, out, lambda x, y, o: elementwise.compare_same(op, x, y, o),
            lambda x, s, o, left: elementwise.compare_scalar(op, x, s, o, left),
            lambda x, r, o, left: elementwise.compare_rows(op, x, r, o, left),
            lambda x, y, o, left: elementwise.compare_middle(op, x, y, o, left))

    def equal(self, a, b):
        return self._compare(op_codes.EQ, a, b)

    def not_equal(self, a, b):
        return self._compare(op_codes.NE, a, b)

    def less(self, a, b):
        return self._compare(op_codes.LT, a, b)

    def less_equal(self, a, b):
        return self._compare(op_codes.LE, a, b)

    def greater(self, a, b):
        return self._compare(op_codes.GT, a, b)

    def greater_equal(self, a, b):
        return self._compare(op_codes.GE, a, b)

    def where(self, cond, a, b):
        shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
        out = host_buffers.empty(shape, np.result_type(a, b))
        if out.size:
            elementwise.where(*(_flat(np.broadcast_to(v, shape)) for v in (cond, a, b)), out.reshape(-1))
        return out

    # -- reductions -------------------------------------------------------------------
    def sum(self, x, axes, keepdims):
        if x.dtype.kind == "f" and len(axes) == x.ndim and 0 < x.size <= config.NUMPY_MAX_ELEMENTS:
            # the total of a tiny array (a batch's losses): numpy's, no kernel to compile on the first run
            with np.errstate(all="ignore"):
                return np.asarray(np.add.reduce(x, axis=axes, keepdims=keepdims, dtype=x.dtype))
        if x.dtype.kind == "f" and x.flags.c_contiguous and x.size and len(axes) == x.ndim:   # a total, fast
            out = host_buffers.empty(1, x.dtype)
            reduce.sum_last(x.reshape(1, -1), out)
            return out.reshape((1,) * x.ndim if keepdims else ())
        shape = kept_shape(x.shape, axes, keepdims)
        x3 = three_axes(x, axes)
        outer, reduced, inner = x3.shape
        if x.dtype.kind != "f" or x3.size == 0:
            return np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype)   # integer and empty sums
        if inner == 1:
            out = host_buffers.empty(outer, x.dtype)
            reduce.sum_last(x3.reshape(outer, reduced), out)
        else:
            out = host_buffers.zeros((outer, inner), x.dtype)
            reduce.sum_middle(x3, out)
        return out.reshape(shape)

    def max(self, x, axes, keepdims):
        shape = kept_shape(x.shape, axes, keepdims)
        x3 = three_axes(x, axes)
        outer, reduced, inner = x3.shape
        if x3.size == 0:
            return np.max(x, axis=axes, keepdims=keepdims)     # numpy's error for an empty reduction
        if inner == 1:
            out = host_buffers.empty(outer, x.dtype)
            reduce.max_last(x3.reshape(outer, reduced), out)
        else:
            out = host_buffers.empty((outer, inner), x.dtype)
            reduce.max_middle(x3, out)
        return out.reshape(shape)

    def argmax(self, x, axis):
        if x.size == 0:
            return np.argmax(x, axis=axis).astype(np.int64)
        if axis is None:
            x3 = np.ascontiguousarray(x).reshape(1, -1, 1)
            shape = ()
        else:
            x3 = three_axes(x, (axis,))
            shape = kept_shape(x.shape, (axis,), False)
        outer, reduced, inner = x3.shape
        out = host_buffers.empty((outer, inner), np.int64)
        if inner == 1:
            reduce.argmax_last(x3.reshape(outer, reduced), out.reshape(-1))
        else:
            reduce.argmax_middle(x3, out)
        return out.reshape(shape)

    def index_add(self, target, index, values):
        along_axis = gather_along_axis(target, index, values)
        if along_axis is not None:         # whole slices along one axis (im2col's, Embedding's): no positions
            outer, rows, inner = along_axis
            reduce.index_add_along_axis(target.reshape(outer, -1, inner), _flat(rows.astype(np.int64)),
                                        np.ascontiguousarray(values).reshape(outer, rows.size, inner))
            return
        # the positions of every indexed element, in the order numpy's fancy indexing visits them
        positions = np.arange(target.size, dtype=np.int64).reshape(target.shape)[index]
        values = np.broadcast_to(values, positions.shape)
        if not target.flags.c_contiguous:
            np.add.at(target, index, values)          # pragma: no cover - the core passes its own arrays
            return
        reduce.index_add(target.reshape(-1), _flat(positions), _flat(values.astype(target.dtype, copy=False)))

    # -- products ---------------------------------------------------------------------
    def _gemm(self, a, b):
        """a @ b for 2-D arrays, by the route NNENGINE_GEMM names."""
        if a.dtype.kind != "f" or 0 in a.shape + b.shape:
            return np.matmul(a, b)
        out = host_buffers.empty((a.shape[0], b.shape[1]), a.dtype)
        if config.gemm_route() == "blas":    # numpy's OpenBLAS, called as the lowered step calls it (blas.py)
            return _blas_product(a, b, out) if blas_library.usable(a, b) else np.matmul(a, b, out=out)
        _gemm_parallel(np.ascontiguousarray(a), np.ascontiguousarray(b), out)
        return out

    def matmul(self, a, b, transpose_a=False, transpose_b=False):
        if transpose_a:
            a = np.swapaxes(a, -1, -2)
        if transpose_b:
            b = np.swapaxes(b, -1, -2)
        if a.ndim == 2 and b.ndim == 2:
            return self._gemm(a, b)
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a = np.broadcast_to(a, batch + a.shape[-2:])
        b = np.broadcast_to(b, batch + b.shape[-2:])
        out = host_buffers.empty(batch + (a.shape[-2], b.shape[-1]), np.result_type(a, b))
        for index in np.ndindex(*batch):
            out[index] = self._gemm(a[index], b[index])
        return out

    # -- fused neural-network primitives ------------------------------------------------
    def dense_forward(self, x, w, b, activation):
        # softmax is a row kernel of its own, run in place after the product and bias (see nn._activate_row)
        code = ACTIVATION_CODES["none" if activation == "softmax" else activation]
        zero, one = zero_one(x.dtype)
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        bias = np.ascontiguousarray(b) if b is not None else w[0]
        n, k = x.shape
        m = w.shape[1]
        if self._dense_is_small(n, k, m):
            out = host_buffers.empty((n, m), x.dtype)
            nn.dense_small(x, w, bias, b is not None, code, out, zero, one)
        else:
            out = np.ascontiguousarray(self._gemm(x, w))
            if out.size:
                kernel = self._row_kernel("bias_activation", _bias_activation_parallel, n, m,
                                          code in _STREAMING_ACTIVATIONS)
                kernel(out, bias, b is not None, code, zero, one)
        if activation == "softmax" and out.size:
            self._softmax_in_place(out)
        return out

    @staticmethod
    def _dense_is_small(n, k, m):
        """Whether an (n, k) @ (k, m) dense layer runs entirely inside the fused small kernel: only off the
        bundled-BLAS route. (With it, a BLAS product and the bias kernel are 2.5x faster even at 32x10x64:
        5.0 against 13.1 us for the document model's three layers; ``benchmarks`` tables both.)"""
        if config.gemm_route() == "blas" and blas_library.AVAILABLE:
            return False
        return bool(n * k * m <= config.SMALL_DENSE_FLOPS and n and k and m)

    def _softmax_in_place(self, z):
        """Softmax of each row of the contiguous 2-D ``z``, written over it."""
        kernel = self._row_kernel("softmax_rows", _softmax_rows_parallel, *z.shape)
        scratch = host_buffers.empty_like(z), host_buffers.empty_like(z)
        kernel(z, z, zero_one(z.dtype)[1], z.dtype == np.float32, *scratch)

    @staticmethod
    def _activation_grad_rows(out, grad_out, activation):
        """(dz, column sums of dz) for 2-D ``out`` and ``grad_out``, in one pass of the fused kernel."""
        zero, one = zero_one(out.dtype)
        dz = host_buffers.empty(out.shape, out.dtype)
        grad_b = np.zeros(out.shape[1], out.dtype)
        if dz.size:
            parallel = config.parallel(dz.size, streaming=True) and len(out) > 1
            kernel = _activation_grad_parallel if parallel else nn.activation_grad
            kernel(np.ascontiguousarray(out), np.ascontiguousarray(grad_out), ACTIVATION_CODES[activation], dz, grad_b,
                   zero, one)
        return dz, grad_b

    def activation_backward(self, out, grad_out, activation, axis):
        moved = activation == "softmax" and axis != out.ndim - 1    # the kernel's softmax runs along rows
        if moved:
            out, grad_out = np.moveaxis(out, axis, -1), np.moveaxis(grad_out, axis, -1)
        columns = out.shape[-1] if out.ndim else 1
        dz, _ = self._activation_grad_rows(np.ascontiguousarray(out).reshape(-1, columns),
                                           np.ascontiguousarray(grad_out).reshape(-1, columns), activation)
        dz = dz.reshape(out.shape)
        return np.moveaxis(dz, -1, axis) if moved else dz

    def dense_backward(self, x, w, out, grad_out, activation, need_grad_x):
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        dz, grad_b = self._activation_grad_rows(out, grad_out, activation)
        grad_w = self._gemm(x.T, dz)
        grad_x = self._gemm(dz, w.T) if need_grad_x else None
        return grad_x, grad_w, grad_b

    @staticmethod
    def _row_kernel(serial, parallel, rows, columns, streaming=False):
        """The serial kernel ``nn.<serial>`` or the ``parallel`` variant, by the work it has (``streaming``: a
        kernel bound by memory traffic; rows of little work that take an exp: the serial kernel's variant with
        libm's exp, ``<serial>_libm``)."""
        if rows * columns < config.FAST_EXP_MIN_ELEMENTS and serial in _LIBM_VARIANTS:
            return getattr(nn, serial + "_libm")
        return parallel if rows > 1 and config.parallel(rows * columns, streaming) else getattr(nn, serial)

    def _rows_along(self, x, axis, serial, parallel, *constants):
        """Apply a row kernel along ``axis`` by moving it last (a copy unless it already is)."""
        moved = np.ascontiguousarray(np.moveaxis(x, axis, -1))
        out = host_buffers.empty(moved.shape, x.dtype)
        if out.size:
            rows = moved.reshape(-1, moved.shape[-1])
            kernel = self._row_kernel(serial, parallel, *rows.shape)
            kernel(rows, out.reshape(rows.shape), *constants, x.dtype == np.float32, host_buffers.empty_like(rows),
                   host_buffers.empty_like(rows))
        return np.moveaxis(out, -1, axis)

    def softmax(self, x, axis):
        return self._rows_along(x, axis, "softmax_rows", _softmax_rows_parallel, zero_one(x.dtype)[1])

    def log_softmax(self, x, axis):
        return self._rows_along(x, axis, "log_softmax_rows", _log_softmax_rows_parallel)

    def softmax_cross_entropy(self, logits, targets, need_grad):
        logits = np.ascontiguousarray(logits)
        n, classes = logits.shape
        losses = host_buffers.empty(n, logits.dtype)
        grad = host_buffers.empty(logits.shape, logits.dtype)
        if n and classes:
            if targets.ndim == 2:
                targets = np.ascontiguousarray(targets)
                serial, parallel = "softmax_cross_entropy_soft", _xent_soft_parallel
            else:
                targets = np.ascontiguousarray(targets, np.int64)
                serial, parallel = "softmax_cross_entropy_labels", _xent_labels_parallel
            kernel = self._row_kernel(serial, parallel, n, classes)
            scratch = host_buffers.empty_like(logits), host_buffers.empty_like(logits)
            kernel(logits, targets, need_grad, losses, grad, logits.dtype == np.float32, *scratch)
        return losses, (grad if need_grad else None)

    # -- the compiled step's CPU tier -----------------------------------------------------
    def lower_plan(self, steps, calls, outputs, live=None, updates=(), replay=None):
        """A captured plan as one numba function (``numba_lowering.lower``: its arguments, and LoweringRefused).
        ``replay`` (the plan's Python replay) is not needed: the function is written from the steps.

        While the ahead-of-time kernels serve (``aot.serving()``: numba not loaded), writing the function
        would load numba, which is what that tier saves a short run from: the plan then replays until its
        ``LOWER_AFTER_REPLAYS``-th replay, and is lowered there (``DeferredLowering``)."""
        calls = list(calls)                     # the recorder's list, as it is now
        def lower_now():
            from . import numba_lowering        # imports numba: only when a plan is lowered
            return numba_lowering.lower(self, steps, calls, outputs, live, updates)
        return DeferredLowering(lower_now) if aot.serving() else lower_now()

