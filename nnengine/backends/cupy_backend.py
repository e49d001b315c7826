"""The CuPy GPU backend: every compute primitive runs our CUDA kernels from ``nnengine.kernels.cuda``.

What stays CuPy's own: transfers, creation, copies, casts and views (from_numpy, to_numpy,
full, copy, astype, ascontiguous, reshape, transpose, broadcast_to, getitem), as the design
asks, and matrix products by default, which go to cuBLAS through ``cupy.matmul``
(``NNENGINE_CUDA_GEMM=tiled`` selects our tiled GEMM instead). Every other primitive is one
of our kernels: the general elementwise ones are ElementwiseKernels over our operations
(``kernels/cuda/elementwise.py``), the rest RawModule kernels from the ``.cu`` sources. This
module only checks dtypes, makes operands contiguous, allocates outputs and picks a kernel.

Host and device never mix silently: ``from_numpy``/``to_numpy`` are the only transfers, and
the core refuses an operation between tensors on different devices.
"""
import numpy as np

from ..kernels.cuda import captured_gemm, elementwise, gemm, nn, optim, reduce
from . import cuda_graphs
from .base import Backend, DeviceUnavailableError
from .cupy_layers import CupyLayerPrimitives
from .determinism import are_deterministic_algorithms_enabled
from .layout import contiguous, kept_shape, three_axes
from .optimizer_scalars import (adadelta_scalars, adagrad_scalars, adam_scalars, adamax_scalars, ftrl_scalars,
                                lion_scalars, nadam_scalars, rmsprop_scalars, sgd_scalars, typed_scalars)

#: primitives that are CuPy's own array operations (transfers, creation, casts and views)
CUPY_PRIMITIVES = ("from_numpy", "to_numpy", "full", "copy", "astype", "ascontiguous", "reshape", "transpose",
                   "broadcast_to", "getitem")

#: what to install for the GPU backend, by CUDA major version
INSTALL_HINT = 'pip install "nnengine[cuda12]" (CUDA 12.x) or "nnengine[cuda13]" (CUDA 13.x)'


def import_cupy():
    """Import CuPy, or raise DeviceUnavailableError saying which extra installs it."""
    try:
        import cupy
    except ImportError as error:
        raise DeviceUnavailableError(
            f"the cuda devices need CuPy, which is not installed ({error}); {INSTALL_HINT}") from None
    except Exception as error:  # a CuPy that is installed but cannot load its CUDA libraries
        raise DeviceUnavailableError(f"CuPy is installed but failed to import: {error}") from None
    return cupy


def check_gpu(cupy, index):
    """Raise DeviceUnavailableError unless CUDA GPU number ``index`` can be used."""
    if not cupy.cuda.is_available():
        raise DeviceUnavailableError(
            f"device 'cuda:{index}' is not available: CuPy {cupy.__version__} sees no CUDA GPU on this machine "
            "(no device, or no driver)")
    count = cupy.cuda.runtime.getDeviceCount()
    if index >= count:
        raise DeviceUnavailableError(
            f"device 'cuda:{index}' is not available: this machine has {count} CUDA GPU(s), 'cuda:0' to "
            f"'cuda:{count - 1}'")


class CupyBackend(CupyLayerPrimitives):
    """Every compute primitive as one of our CUDA kernels (see the module docstring)."""

    name = "cupy"
    reads_wait = True           # a read waits for the GPU's queue: the trainer defers them (batch_loops)

    def __init__(self, device):
        super().__init__(device)
        self.index = int(device.split(":")[1])
        self.cupy = cp = import_cupy()
        check_gpu(cp, self.index)
        self.graph_recording = cuda_graphs.Recording()      # per thread: the CUDA Graph it records, if any
        self.several_gpus = cp.cuda.runtime.getDeviceCount() > 1
        if self.several_gpus:
            self._bind_device()

    def make_current(self):
        """Make this instance's GPU the current one (with several GPUs, every primitive does so first)."""
        runtime = self.cupy.cuda.runtime
        if runtime.getDevice() != self.index:
            runtime.setDevice(self.index)

    def _bind_device(self):
        """With several GPUs, make every primitive of this instance run with its GPU current."""
        def on_device(method):
            def call(*args, **kwargs):
                self.make_current()
                return method(*args, **kwargs)
            call.__doc__ = method.__doc__
            return call

        for name in Backend.primitives():
            setattr(self, name, on_device(getattr(self, name)))

    # -- transfers, creation, copies, casts and views: CuPy's own -----------------------------
    def from_numpy(self, array):
        return self.cupy.array(array, order="C")          # a copy on the device, 0-d arrays kept

    def to_numpy(self, x):
        return self.cupy.asnumpy(x)                       # a new C-ordered host array

    def full(self, shape, value, dtype):
        return self.cupy.full(shape, value, dtype)

    def copy(self, x):
        return x.copy(order="C")

    def astype(self, x, dtype):
        return x.astype(dtype, order="C", copy=True)

    def ascontiguous(self, x):
        return contiguous(x)

    def reshape(self, x, shape):
        return x.reshape(shape)

    def transpose(self, x, axes):
        return x.transpose(axes)

    def broadcast_to(self, x, shape):
        return self.cupy.broadcast_to(x, shape)

    def getitem(self, x, index):
        return x[index]

    def assign(self, target, value):
        target[...] = value

    def index_add(self, target, index, values):
        if not target.flags.c_contiguous:
            raise ValueError("index_add on cuda needs a C-contiguous target; the core passes its own arrays")
        positions = self._flat_positions(target.shape, index)
        if positions.size == 0:
            return
        values = contiguous(self.cupy.broadcast_to(values.astype(target.dtype, copy=False), positions.shape))
        reduce.scatter_add(target.reshape(-1), contiguous(positions).reshape(-1), values.reshape(-1),
                           deterministic=are_deterministic_algorithms_enabled())

    def _flat_positions(self, shape, index):
        """The flat position in a C-ordered array of ``shape`` of every element ``x[index]`` selects, in
        the order indexing visits them (the shape of ``x[index]``).

        An index of full slices, then integers and integer arrays (Embedding's rows, a gather of labels,
        the im2col gather x[:, windows, :]) is turned into positions directly: for the integer parts
        sum_k i_k * stride_k, plus every offset of the axes before and after them. Any other index
        (partial slices, booleans, ...) indexes an arange over the array.
        """
        cp = self.cupy
        parts = index if isinstance(index, tuple) else (index,)
        leading = next((k for k, p in enumerate(parts) if not (isinstance(p, slice) and p == slice(None))),
                       len(parts))
        integer_parts = all(isinstance(p, (int, np.integer)) or (hasattr(p, "dtype") and p.dtype.kind in "iu")
                            for p in parts[leading:])
        if not (parts[leading:] and integer_parts and len(parts) <= len(shape)):
            return cp.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)[index]
        strides = np.cumprod((1,) + shape[::-1][:-1], dtype=np.int64)[::-1]      # C strides, in elements
        lead = None
        for part, size, stride in zip(parts[leading:], shape[leading:], strides[leading:]):
            term = cp.asarray(part).astype(np.int64, copy=False)
            term = (term % size) * stride if size else term         # numpy's negative indices count from the end
            lead = term if lead is None else lead + term
        before, after = shape[:leading], shape[len(parts):]
        positions = lead.reshape((1,) * len(before) + lead.shape + (1,) * len(after))
        if after:
            offsets = cp.arange(int(np.prod(after, dtype=np.int64)), dtype=np.int64)
            positions = positions + offsets.reshape((1,) * (len(before) + lead.ndim) + after)
        if before:
            outer = cp.arange(int(np.prod(before, dtype=np.int64)), dtype=np.int64) * int(strides[leading - 1])
            positions = positions + outer.reshape(before + (1,) * (lead.ndim + len(after)))
        return positions

    # -- elementwise: ElementwiseKernels over our operations ----------------------------------
    def neg(self, x):
        return elementwise.run("neg", x)

    def exp(self, x):
        return elementwise.run("exp", x)

    def log(self, x):
        return elementwise.run("log", x)

    def sqrt(self, x):
        return elementwise.run("sqrt", x)

    def tanh(self, x):
        return elementwise.run("tanh", x)

    def sigmoid(self, x):
        return elementwise.run("sigmoid", x)

    def relu(self, x):
        return elementwise.run("relu", x)

    def erf(self, x):
        return elementwise.run("erf", x)

    def add(self, a, b):
        return elementwise.run("add", a, b)

    def sub(self, a, b):
        return elementwise.run("sub", a, b)

    def mul(self, a, b):
        return elementwise.run("mul", a, b)

    def div(self, a, b):
        return elementwise.run("div", a, b)

    def power(self, a, b):
        if a.dtype.kind in "iu" and b.size and int(self.max(self.neg(b), tuple(range(b.ndim)), False)) > 0:
            raise ValueError("Integers to negative integer powers are not allowed.")   # numpy's rule and words
        return elementwise.run("power", a, b)

    def maximum(self, a, b):
        return elementwise.run("maximum", a, b)

    def minimum(self, a, b):
        return elementwise.run("minimum", a, b)

    def equal(self, a, b):
        return elementwise.run("equal", a, b)

    def not_equal(self, a, b):
        return elementwise.run("not_equal", a, b)

    def less(self, a, b):
        return elementwise.run("less", a, b)

    def less_equal(self, a, b):
        return elementwise.run("less_equal", a, b)

    def greater(self, a, b):
        return elementwise.run("greater", a, b)

    def greater_equal(self, a, b):
        return elementwise.run("greater_equal", a, b)

    def where(self, cond, a, b):
        return elementwise.run("where", cond, a, b)

    # -- reductions -------------------------------------------------------------------------
    def sum(self, x, axes, keepdims):
        shape = kept_shape(x.shape, axes, keepdims)
        if x.size == 0:
            return self.cupy.zeros(shape, x.dtype)    # a sum over nothing is 0
        return reduce.reduce3(three_axes(x, axes), "sum").reshape(shape)

    def max(self, x, axes, keepdims):
        shape = kept_shape(x.shape, axes, keepdims)
        if any(x.shape[a] == 0 for a in axes):
            raise ValueError("zero-size array to reduction operation maximum which has no identity")
        if x.size == 0:
            return self.cupy.empty(shape, x.dtype)
        return reduce.reduce3(three_axes(x, axes), "max").reshape(shape)

    def argmax(self, x, axis):
        if x.size == 0:
            raise ValueError("attempt to get argmax of an empty sequence")
        if axis is None:
            return reduce.argmax3(contiguous(x).reshape(1, -1, 1)).reshape(())
        shape = kept_shape(x.shape, (axis,), False)
        return reduce.argmax3(three_axes(x, (axis,))).reshape(shape)

    def argmax_matches(self, predictions, targets):
        if not predictions.size:
            return self.cupy.zeros((), np.int64)
        classes = predictions.shape[-1]
        rows = contiguous(predictions).reshape(-1, classes)
        if targets.ndim == predictions.ndim - 1:
            return reduce.argmax_hits(rows, contiguous(targets.astype(np.int64, copy=False)).reshape(-1))
        return reduce.argmax_hits(rows, contiguous(targets.astype(rows.dtype, copy=False)).reshape(-1, classes))

    # -- products ---------------------------------------------------------------------------
    def _product(self, a, b):
        """a @ b by the route NNENGINE_CUDA_GEMM names (cuBLAS by default). While a CUDA Graph records, cuBLAS
        is called directly (``captured_gemm``): CuPy refuses its own cuBLAS calls on a capturing stream."""
        if gemm.gemm_route() == "tiled" and a.dtype.kind == "f":
            return gemm.gemm_tiled(a, b)
        if self.graph_recording.slots is not None and captured_gemm.can_multiply(a, b):
            return captured_gemm.matmul(a, b)
        return self.cupy.matmul(a, b)

    def matmul(self, a, b, transpose_a=False, transpose_b=False):
        if transpose_a:
            a = self.cupy.swapaxes(a, -1, -2)
        if transpose_b:
            b = self.cupy.swapaxes(b, -1, -2)
        return self._product(a, b)

    # -- fused neural-network primitives ----------------------------------------------------
    def dense_forward(self, x, w, b, activation):
        cp = self.cupy
        z = contiguous(self._product(x, w))
        bias = None if b is None else contiguous(b)
        if z.size == 0:
            return z
        if activation == "softmax":             # the bias goes into the softmax kernel
            out = cp.empty_like(z)
            nn.softmax_rows(z, bias, out, log_output=False)
            return out
        if bias is not None or activation != "none":
            nn.bias_activation(z, bias, activation)     # in place: one read and one write of z
        return z

    def _activation_grad_rows(self, out, grad_out, activation):
        """(dz, column sums of dz) for 2-D ``out`` and ``grad_out``: the fused kernel's one pass."""
        cp = self.cupy
        out, grad_out = contiguous(out), contiguous(grad_out)
        dz = cp.empty_like(out)
        if activation == "softmax":
            if dz.size:
                nn.softmax_grad_rows(out, grad_out, dz)
            return dz, self.sum(dz, (0,), False)
        if not dz.size:
            return dz, cp.zeros(out.shape[1], out.dtype)       # a sum over no rows is 0
        grad_b = nn.activation_grad_bias(out, grad_out, dz, activation, lambda partials: self.sum(partials, (0,), False))
        return dz, grad_b

    def activation_backward(self, out, grad_out, activation, axis):
        cp = self.cupy
        moved_out = cp.moveaxis(out, axis, -1) if activation == "softmax" else out
        moved_grad = cp.moveaxis(grad_out, axis, -1) if activation == "softmax" else grad_out
        shape = moved_out.shape
        columns = shape[-1] if shape else 1
        dz, _ = self._activation_grad_rows(contiguous(moved_out).reshape(-1, columns),
                                           contiguous(moved_grad).reshape(-1, columns), activation)
        dz = dz.reshape(shape)
        return cp.moveaxis(dz, -1, axis) if activation == "softmax" else dz

    def dense_backward(self, x, w, out, grad_out, activation, need_grad_x):
        dz, grad_b = self._activation_grad_rows(out, grad_out, activation)
        grad_w = self._product(x.T, dz)
        grad_x = self._product(dz, w.T) if need_grad_x else None
        return grad_x, grad_w, grad_b

    def _rows_along(self, x, axis, log_output):
        """Row softmax along ``axis``, by moving it last (a copy unless it already is)."""
        cp = self.cupy
        moved = contiguous(cp.moveaxis(x, axis, -1))
        out = cp.empty_like(moved)
        if out.size:
            rows = moved.reshape(-1, moved.shape[-1])
            nn.softmax_rows(rows, None, out.reshape(rows.shape), log_output)
        return cp.moveaxis(out, -1, axis)

    def softmax(self, x, axis):
        return self._rows_along(x, axis, log_output=False)

    def log_softmax(self, x, axis):
        return self._rows_along(x, axis, log_output=True)

    def softmax_cross_entropy(self, logits, targets, need_grad):
        cp = self.cupy
        logits = contiguous(logits)
        n, classes = logits.shape
        losses = cp.empty(n, logits.dtype) if classes else cp.zeros(n, logits.dtype)   # the kernel writes each row
        grad = cp.empty_like(logits) if need_grad else logits     # without need_grad the kernel never writes it
        if targets.ndim == 2:
            targets = contiguous(targets.astype(logits.dtype, copy=False))
        else:
            targets = contiguous(targets.astype(np.int64, copy=False))
        if n and classes:
            nn.softmax_cross_entropy(logits, targets, losses, grad, need_grad)
        return losses, (grad if need_grad else None)

    # -- compiled steps ------------------------------------------------------------------------
    def lower_plan(self, steps, calls, outputs, live=None, updates=(), replay=None):
        """A captured plan as one CUDA Graph (``cuda_graphs.lower``: its arguments, and LoweringRefused)."""
        return cuda_graphs.lower(self, steps, calls, outputs, live, updates, replay)

    # -- optimizer updates (in place) ---------------------------------------------------------
    def _step_scalars(self, make, dtype, *arguments):
        """An update's scalars, ``typed_scalars(make, dtype, *arguments)``; while this thread records a CUDA Graph,
        the device array the graph's update reads them from (refreshed before each launch: ``cuda_graphs``)."""
        scalars = typed_scalars(make, dtype, *arguments)
        slots = self.graph_recording.slots
        return scalars if slots is None else slots.take(scalars)

    @staticmethod
    def _check_contiguous(*arrays):
        if any(a is not None and not a.flags.c_contiguous for a in arrays):
            raise ValueError("optimizer updates on cuda need C-contiguous arrays; the core creates parameters "
                             "and optimizer state contiguous")

    def sgd_update(self, param, grad, velocity, lr, momentum, nesterov, weight_decay):
        self._check_contiguous(param, grad, velocity)
        scalars = self._step_scalars(sgd_scalars, param.dtype, lr, momentum, weight_decay)
        optim.sgd(param, grad, velocity, scalars, momentum != 0, nesterov)

    def adam_update(self, param, grad, m, v, v_max, step, lr, beta_1, beta_2, epsilon, amsgrad, weight_decay):
        self._check_contiguous(param, grad, m, v, v_max)
        scalars = self._step_scalars(adam_scalars, param.dtype, step, lr, beta_1, beta_2, epsilon, weight_decay)
        optim.adam(param, grad, m, v, v_max, scalars, amsgrad)

    def adam_update_many(self, params, grads, ms, vs, v_maxes, step, lr, beta_1, beta_2, epsilon, amsgrad,
                         weight_decay):
        if not params:
            return
        self._check_contiguous(*params, *grads, *ms, *vs, *v_maxes)
        dtypes = {a.dtype for group in (params, grads, ms, vs, v_maxes) for a in group if a is not None}
        if len(dtypes) > 1:            # one launch serves one dtype: mixed groups go one by one
            return super().adam_update_many(params, grads, ms, vs, v_maxes, step, lr, beta_1, beta_2, epsilon,
                                            amsgrad, weight_decay)
        scalars = self._step_scalars(adam_scalars, params[0].dtype, step, lr, beta_1, beta_2, epsilon,
                                     weight_decay)
        optim.adam_many(params, grads, ms, vs, v_maxes, scalars, amsgrad)

    def rmsprop_update(self, param, grad, mean_square, mean_grad, velocity, lr, rho, momentum, epsilon, centered,
                       weight_decay):
        self._check_contiguous(param, grad, mean_square, mean_grad, velocity)
        scalars = self._step_scalars(rmsprop_scalars, param.dtype, lr, rho, momentum, epsilon, weight_decay)
        optim.rmsprop(param, grad, mean_square, mean_grad, velocity, scalars, centered, momentum > 0)

    def adamax_update(self, param, grad, m, u, step, lr, beta_1, beta_2, epsilon, weight_decay):
        self._check_contiguous(param, grad, m, u)
        scalars = self._step_scalars(adamax_scalars, param.dtype, step, lr, beta_1, beta_2, epsilon, weight_decay)
        optim.adamax(param, grad, m, u, scalars)

    def nadam_update(self, param, grad, m, v, step, u_product, lr, beta_1, beta_2, epsilon, weight_decay):
        self._check_contiguous(param, grad, m, v)
        scalars = self._step_scalars(nadam_scalars, param.dtype, step, u_product, lr, beta_1, beta_2, epsilon,
                                     weight_decay)
        optim.nadam(param, grad, m, v, scalars)

    def lion_update(self, param, grad, m, lr, beta_1, beta_2, weight_decay):
        self._check_contiguous(param, grad, m)
        optim.lion(param, grad, m, self._step_scalars(lion_scalars, param.dtype, lr, beta_1, beta_2, weight_decay))

    def adadelta_update(self, param, grad, accumulated_grad, accumulated_delta, lr, rho, epsilon, weight_decay):
        self._check_contiguous(param, grad, accumulated_grad, accumulated_delta)
        scalars = self._step_scalars(adadelta_scalars, param.dtype, lr, rho, epsilon, weight_decay)
        optim.adadelta(param, grad, accumulated_grad, accumulated_delta, scalars)

    def ftrl_update(self, param, grad, accumulator, linear, lr, learning_rate_power, l1, l2, l2_shrinkage, beta,
                    weight_decay):
        self._check_contiguous(param, grad, accumulator, linear)
        scalars = self._step_scalars(ftrl_scalars, param.dtype, lr, learning_rate_power, l1, l2, l2_shrinkage, beta,
                                     weight_decay)
        optim.ftrl(param, grad, accumulator, linear, scalars)

    def adagrad_update(self, param, grad, accumulator, lr, epsilon, weight_decay):
        self._check_contiguous(param, grad, accumulator)
        scalars = self._step_scalars(adagrad_scalars, param.dtype, lr, epsilon, weight_decay)
        optim.adagrad(param, grad, accumulator, scalars)
