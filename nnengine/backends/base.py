"""The Backend interface: every compute primitive nnengine's core may call.

A primitive that is not declared here does not exist. The core (floor 3) holds
backend arrays and calls these methods; it never imports numpy-specific, numba
or cupy code itself. The numpy backend (``numpy_backend.py``) implements each
primitive in the plainest numpy and is the specification; every other backend
must implement the same set and agree with it (``tests/test_backends.py``).

Conventions that hold for every primitive unless its docstring says otherwise:

* "array" means the backend's own array type (``numpy.ndarray`` for the CPU
  backends, ``cupy.ndarray`` for CUDA).
* Floating primitives accept float32 and float64 and return the dtype they were
  given. Binary primitives receive two arrays of the SAME dtype; the core
  promotes before calling (see ``nnengine.dtypes.result_dtype``).
* Binary primitives broadcast with numpy's rules. The core has already checked
  that the shapes broadcast, so a backend may assume they do.
* Primitives return new arrays and never modify their inputs, except those whose
  name ends in ``_update``, ``index_add`` and ``assign``, which write in place as stated.
* General primitives are abstract: every backend implements them. Fused primitives
  have a default here, composed of the general ones; that default is their
  specification (the numpy backend inherits it; faster backends override it).
* View primitives (reshape, transpose, broadcast_to, getitem with basic indices)
  may return views that share memory with their input; the core never writes
  through them.
* ``axes`` arguments are tuples of non-negative, distinct axis numbers, already
  normalised by the core.

The interface is one piece on purpose (about 780 lines): the list of primitives, their
contracts and the fused references are read together, and a backend author works from it.
"""
from abc import ABC, abstractmethod

import numpy as np

from ..kernels.activation_codes import ACTIVATION_NAMES, activation_code
from . import recurrent_reference
from .optimizer_scalars import (adadelta_scalars, adagrad_scalars, adam_scalars, adamax_scalars, ftrl_scalars,
                                lion_scalars, nadam_scalars, rmsprop_scalars, sgd_scalars)

#: Activation names understood by the fused dense primitives (the one table in kernels/activation_codes.py).
DENSE_ACTIVATIONS = ACTIVATION_NAMES


class DeviceUnavailableError(RuntimeError):
    """A device string is valid but nothing on this machine can compute on it."""


class LoweringRefused(Exception):
    """A captured plan cannot be lowered to its backend's compiled form (one numba function on the CPU, one
    CUDA Graph on the GPU); the message says why, and the plan keeps its Python replay."""


class Backend(ABC):
    """Abstract base of every compute backend.

    Attributes:
        name: the registry name of the implementation ("numpy", "numba", "cupy").
        device: the canonical device string this instance computes on
            ("numpy", "cpu", "cuda:0", ...).
        reads_wait: whether ``to_numpy`` waits for queued device work (a GPU: a host sync), so callers
            should read results back rarely; False where arrays live in host memory.
    """

    name = "abstract"
    reads_wait = False

    def __init__(self, device):
        self.device = device

    def __repr__(self):
        return f"<{type(self).__name__} device={self.device!r}>"

    @classmethod
    def primitives(cls):
        """Return the sorted names of every primitive: the general ones and the fused ones."""
        return sorted(Backend.general_primitives() + Backend.fused_primitives())

    @classmethod
    def general_primitives(cls):
        """The names of the primitives every backend must implement itself (the abstract methods)."""
        return sorted(name for name, value in vars(Backend).items()
                      if getattr(value, "__isabstractmethod__", False))

    @classmethod
    def fused_primitives(cls):
        """The names of the fused primitives: each has a reference default here that a backend may override."""
        return sorted(name for name, value in vars(Backend).items()
                      if callable(value) and not name.startswith("_") and not getattr(value, "__isabstractmethod__", False)
                      and name not in ("primitives", "general_primitives", "fused_primitives"))

    # ------------------------------------------------------------------
    # Transfers, creation, copies and casts
    # ------------------------------------------------------------------
    @abstractmethod
    def from_numpy(self, array):
        """Copy a host ``numpy.ndarray`` into a new, C-contiguous backend array.

        The dtype is kept exactly. Used for every host-to-backend transfer.
        """

    @abstractmethod
    def to_numpy(self, x):
        """Copy backend array ``x`` into a new host ``numpy.ndarray`` of the same dtype and shape."""

    @abstractmethod
    def full(self, shape, value, dtype):
        """Return a new C-contiguous array of ``shape`` and ``dtype`` filled with the scalar ``value``.

        ``shape`` may be ``()`` for a 0-d array; the core uses 0-d arrays for constants.
        """

    @abstractmethod
    def copy(self, x):
        """Return a C-contiguous copy of ``x`` that shares no memory with it."""

    @abstractmethod
    def astype(self, x, dtype):
        """Return ``x`` converted to ``dtype`` (a new array; C casting rules, floats to ints truncate)."""

    @abstractmethod
    def ascontiguous(self, x):
        """Return ``x`` itself if it is C-contiguous, otherwise a C-contiguous copy."""

    # ------------------------------------------------------------------
    # Views and indexing
    # ------------------------------------------------------------------
    @abstractmethod
    def reshape(self, x, shape):
        """Return ``x`` with a new ``shape`` of the same size (a view when the layout allows)."""

    @abstractmethod
    def transpose(self, x, axes):
        """Return ``x`` with its axes permuted: output axis i is input axis ``axes[i]`` (a view)."""

    @abstractmethod
    def broadcast_to(self, x, shape):
        """Return a read-only view of ``x`` broadcast to ``shape`` (numpy broadcasting rules)."""

    @abstractmethod
    def getitem(self, x, index):
        """Return ``x[index]`` with numpy indexing semantics.

        ``index`` is an int, slice, None, Ellipsis, a backend integer or boolean
        array, or a tuple of those. Basic indices give views; array indices copy.
        """

    @abstractmethod
    def index_add(self, target, index, values):
        """IN PLACE: ``target[index] += values``, where repeated indices ACCUMULATE.

        ``index`` follows ``getitem``; ``values`` broadcasts to ``target[index]``'s
        shape and has ``target``'s dtype. Returns None. This is the backward of getitem.
        """

    @abstractmethod
    def assign(self, target, value):
        """IN PLACE: ``target[...] = value``; ``value`` broadcasts to ``target``'s shape and has its dtype.

        Returns None. The fused in-place updates are written with it.
        """

    # ------------------------------------------------------------------
    # Elementwise unary (float32/float64 in, same dtype out; neg also on ints)
    # ------------------------------------------------------------------
    @abstractmethod
    def neg(self, x):
        """Return ``-x`` elementwise."""

    @abstractmethod
    def exp(self, x):
        """Return ``e**x`` elementwise (overflows to +inf for large x, as IEEE does)."""

    @abstractmethod
    def log(self, x):
        """Return the natural logarithm of ``x`` elementwise (-inf at 0, nan below 0)."""

    @abstractmethod
    def sqrt(self, x):
        """Return the square root of ``x`` elementwise (nan below 0)."""

    @abstractmethod
    def tanh(self, x):
        """Return the hyperbolic tangent of ``x`` elementwise."""

    @abstractmethod
    def sigmoid(self, x):
        """Return ``1 / (1 + e**-x)`` elementwise, computed without overflow for any finite x."""

    @abstractmethod
    def relu(self, x):
        """Return ``max(x, 0)`` elementwise."""

    @abstractmethod
    def erf(self, x):
        """Return the error function ``erf(x) = 2/sqrt(pi) * integral_0^x e**(-t*t) dt`` elementwise.

        Accurate to the dtype's precision (it is the core of the exact GELU)."""

    # ------------------------------------------------------------------
    # Elementwise binary, numpy broadcasting, both operands of one dtype
    # ------------------------------------------------------------------
    @abstractmethod
    def add(self, a, b):
        """Return ``a + b`` (broadcast)."""

    @abstractmethod
    def sub(self, a, b):
        """Return ``a - b`` (broadcast)."""

    @abstractmethod
    def mul(self, a, b):
        """Return ``a * b`` (broadcast)."""

    @abstractmethod
    def div(self, a, b):
        """Return ``a / b`` (broadcast; floating dtypes only, IEEE results for a zero divisor)."""

    @abstractmethod
    def power(self, a, b):
        """Return ``a ** b`` (broadcast)."""

    @abstractmethod
    def maximum(self, a, b):
        """Return the elementwise larger of ``a`` and ``b`` (broadcast; nan if either is nan)."""

    @abstractmethod
    def minimum(self, a, b):
        """Return the elementwise smaller of ``a`` and ``b`` (broadcast; nan if either is nan)."""

    # ------------------------------------------------------------------
    # Comparisons and selection (bool results)
    # ------------------------------------------------------------------
    @abstractmethod
    def equal(self, a, b):
        """Return the bool array ``a == b`` (broadcast)."""

    @abstractmethod
    def not_equal(self, a, b):
        """Return the bool array ``a != b`` (broadcast)."""

    @abstractmethod
    def less(self, a, b):
        """Return the bool array ``a < b`` (broadcast)."""

    @abstractmethod
    def less_equal(self, a, b):
        """Return the bool array ``a <= b`` (broadcast)."""

    @abstractmethod
    def greater(self, a, b):
        """Return the bool array ``a > b`` (broadcast)."""

    @abstractmethod
    def greater_equal(self, a, b):
        """Return the bool array ``a >= b`` (broadcast)."""

    @abstractmethod
    def where(self, cond, a, b):
        """Return ``a`` where the bool array ``cond`` is true, else ``b`` (all three broadcast).

        ``a`` and ``b`` have one dtype, which the result keeps.
        """

    # ------------------------------------------------------------------
    # Reductions
    # ------------------------------------------------------------------
    @abstractmethod
    def sum(self, x, axes, keepdims):
        """Sum ``x`` over ``axes`` (a tuple; ``()`` means no reduction), keeping the dtype.

        With ``keepdims`` the reduced axes stay as size 1. Summing over an empty
        axis gives 0.
        """

    @abstractmethod
    def max(self, x, axes, keepdims):
        """Maximum of ``x`` over the non-empty ``axes`` (a tuple), keeping the dtype; nan propagates."""

    @abstractmethod
    def argmax(self, x, axis):
        """Index (int64) of the first maximum of ``x`` along the single int ``axis``, which is removed."""

    def argmax_matches(self, predictions, targets):
        """The hits of an accuracy, counted where the step runs: a 0-d int64 array holding how many rows of
        ``predictions`` (..., classes), classes >= 1, have their argmax (``argmax``'s: the first maximum, the
        first NaN) equal to the target's class. ``targets`` holds the classes as int64 labels (...), or rows
        (..., classes) whose argmax is the class (one-hot or soft targets).

        This composite is the reference; a backend may run it as one kernel. The 0/1 hits are summed as
        float64, exact for any count below 2**53.
        """
        last = predictions.ndim - 1
        chosen = self.argmax(predictions, last)
        classes = targets if targets.ndim == last else self.argmax(targets, last)
        hits = self.astype(self.equal(chosen, classes), np.float64)
        return self.astype(self.sum(hits, tuple(range(last)), False), np.int64)

    # ------------------------------------------------------------------
    # Products
    # ------------------------------------------------------------------
    @abstractmethod
    def matmul(self, a, b, transpose_a=False, transpose_b=False):
        """Return ``op(a) @ op(b)`` where ``op`` swaps the last two axes when its flag is set.

        Both operands have at least 2 dims and one floating dtype; leading
        (batch) dims broadcast as in ``numpy.matmul``. The core has checked that
        the inner dimensions agree.
        """

    # ------------------------------------------------------------------
    # Fused neural-network primitives. Each default below IS the primitive's
    # specification, written with the general primitives above: the numpy
    # backend inherits it, the fast backends override it with one kernel, and
    # tests/test_backends.py compares every override with it.
    # ------------------------------------------------------------------
    def _constant(self, value, dtype):
        """A 0-d array holding ``value`` (how the defaults write scalars)."""
        return self.full((), value, dtype)

    def _activate(self, z, activation):
        """act(z) for a name of ``DENSE_ACTIVATIONS``; softmax over the last axis."""
        activation_code(activation)          # an unknown name raises here
        if activation == "none":
            return z
        if activation == "softmax":
            return self.softmax(z, z.ndim - 1)
        return getattr(self, activation)(z)

    def activation_backward(self, out, grad_out, activation, axis):
        """Return dL/dz from the activation's output ``out`` = act(z) and ``grad_out`` = dL/dout.

        ``activation`` is one of ``DENSE_ACTIVATIONS``; ``axis`` is the softmax axis (an int,
        unused by the others). The derivatives, written from the output:
        relu ``g * [out > 0]``; sigmoid ``g * out * (1 - out)``; tanh ``g * (1 - out^2)``;
        softmax ``out * (g - sum(g * out))``, the sum along ``axis``.
        """
        activation_code(activation)
        g = grad_out
        if activation == "none":
            return g
        zero, one = self._constant(0, out.dtype), self._constant(1, out.dtype)
        if activation == "relu":
            return self.where(self.greater(out, zero), g, zero)
        if activation == "sigmoid":
            return self.mul(self.mul(g, out), self.sub(one, out))
        if activation == "tanh":
            return self.mul(g, self.sub(one, self.mul(out, out)))
        dot = self.sum(self.mul(g, out), (axis,), True)
        return self.mul(out, self.sub(g, dot))

    def dense_forward(self, x, w, b, activation):
        """Fused dense layer: return ``act(x @ w + b)``.

        Shapes: ``x`` (n, in), ``w`` (in, out) in Keras order, ``b`` (out,) or None
        for no bias; result (n, out), all one floating dtype. ``activation`` is
        one of ``DENSE_ACTIVATIONS``; softmax is over the last axis.
        """
        z = self.matmul(x, w)
        if b is not None:
            z = self.add(z, b)
        return self._activate(z, activation)

    def dense_backward(self, x, w, out, grad_out, activation, need_grad_x):
        """Backward of ``dense_forward``: return ``(grad_x, grad_w, grad_b)``.

        ``out`` is the forward's result and ``grad_out`` the gradient of the loss
        with respect to it, both (n, out). With ``dZ = activation_backward(out, grad_out)``,
        the gradient before the activation: ``grad_w = x.T @ dZ`` (in, out),
        ``grad_b = sum of dZ over rows`` (out,), and ``grad_x = dZ @ w.T`` (n, in),
        or None when ``need_grad_x`` is false (the first layer needs none).
        """
        dz = self.activation_backward(out, grad_out, activation, 1)
        grad_w = self.matmul(x, dz, transpose_a=True)
        grad_b = self.sum(dz, (0,), False)
        grad_x = self.matmul(dz, w, transpose_b=True) if need_grad_x else None
        return grad_x, grad_w, grad_b

    def softmax(self, x, axis):
        """Return ``exp(x - max) / sum(exp(x - max))`` along the int ``axis`` (stable for any finite x)."""
        shifted = self.sub(x, self.max(x, (axis,), True))
        e = self.exp(shifted)
        return self.div(e, self.sum(e, (axis,), True))

    def log_softmax(self, x, axis):
        """Return ``x - max - log(sum(exp(x - max)))`` along the int ``axis`` (stable log-sum-exp)."""
        shifted = self.sub(x, self.max(x, (axis,), True))
        return self.sub(shifted, self.log(self.sum(self.exp(shifted), (axis,), True)))

    def softmax_cross_entropy(self, logits, targets, need_grad):
        """Fused softmax cross-entropy: return ``(losses, grad_logits)``.

        ``logits`` is (n, c) floating. ``targets`` is either (n, c) of the
        logits' dtype (one-hot, soft, or unnormalised weights t) or (n,) int64
        class indices in [0, c), which stand for their one-hot rows. Per row, with
        p = softmax(logits): ``losses[i] = -sum_j t_ij * log p_ij`` (n,), and
        ``grad_logits[i, j] = p_ij * sum_k t_ik - t_ij`` (n, c), the gradient of
        ``losses[i]`` with respect to ``logits[i]``, right for targets that do not
        sum to 1. ``grad_logits`` is None when ``need_grad`` is false.
        """
        neg_log_p = self.neg(self.log_softmax(logits, 1))         # -log p = lse - z, taken stably
        if targets.ndim == 1:
            classes = self.from_numpy(np.arange(logits.shape[1], dtype=np.int64))
            one_hot = self.equal(self.reshape(targets, (targets.shape[0], 1)), classes)
            targets = self.astype(one_hot, logits.dtype)
        losses = self.sum(self.mul(targets, neg_log_p), (1,), False)
        if not need_grad:
            return losses, None
        p = self.exp(self.neg(neg_log_p))
        return losses, self.sub(self.mul(p, self.sum(targets, (1,), True)), targets)

    # Recurrent layers: a whole sequence per call, time-major (recurrent_reference.py holds the formulas)
    def recurrent_forward(self, cell, p, kernel, bias, activation, recurrent_activation, reverse, reset_after,
                          masks=None, step_mask=None, initial_state=None):
        """Run a recurrent cell over a sequence: return ``(states, last, cache)``.

        ``cell`` is "simple_rnn", "lstm" or "gru"; ``p`` (T, n, G*u) the projected inputs x_t @ W (+ b), G = 1, 4
        or 3 gates in Keras's order; ``kernel`` (u, G*u) the recurrent kernel; ``bias`` the GRU's (2, 3u) bias
        when ``reset_after`` (row 0 for x, row 1 for h @ U), else None (the projection holds it).
        ``activation``/``recurrent_activation`` are "none", "relu", "sigmoid" or "tanh". Step k reads p[k], or
        p[T-1-k] with ``reverse``. ``states`` (T, n, u) is the state after each
        step, ``last`` (n, u) the final one, ``cache`` (T, n, B*u) what the backward needs (B = 0, 6, 4).
        ``masks`` (G, n, u) or None: Keras's recurrent dropout, gate g's block of h @ U made from h * masks[g].
        ``step_mask`` (T, n) of p's dtype or None: Keras's mask of padded steps, in p's order (1 where the step
        holds data, 0 where it is padding: the state then carries over unchanged).
        ``initial_state``: None (zeros), or the state before step 0, (h0,) or for the LSTM (h0, c0), each (n, u).
        The LSTM's last carry c_T is in the cache (``recurrent_reference.last_cell``).
        """
        return recurrent_reference.forward(self, cell, p, kernel, bias, activation, recurrent_activation, reverse,
                                           reset_after, masks, step_mask, initial_state)

    def recurrent_backward(self, cell, kernel, bias, states, cache, grad, activation, recurrent_activation,
                           reverse, reset_after, masks=None, step_mask=None, initial_state=None, d_last_cell=None):
        """Backpropagation through time of ``recurrent_forward``: return ``(dp, d_kernel, d_bias, dh0, dc0)``.

        ``states`` and ``cache`` are the forward's; ``grad`` is dL/dstates (T, n, u), or dL/dlast (n, u) when only
        the last state was used. ``dp`` (T, n, G*u) is in the inputs' order; ``d_bias`` (2, 3u) exists when
        ``bias`` does (the GRU with reset_after), else None. ``initial_state`` is the forward's; ``dh0`` and (for
        the LSTM) ``dc0`` its gradient, else None. ``d_last_cell`` (n, u) or None: the LSTM's dL/dc_T.
        """
        return recurrent_reference.backward(self, cell, kernel, bias, states, cache, grad, activation,
                                            recurrent_activation, reverse, reset_after, masks, step_mask,
                                            initial_state, d_last_cell)

    # Windows of images (convolution and pooling) and normalization. ``x`` is (n, s, c): n samples of
    # s = height * width positions of c channels (channels_last, spatial axes flattened). ``positions``
    # is an int64 backend array (p * k,): entry i * k + j is the flat position, in [0, s), of element j
    # of output i's window, or s where that element falls in the padding (conv_layers.window_positions).
    def window_gather(self, x, positions, fill):
        """im2col: return ``out`` (n, p * k, c) with ``out[:, i] = x[:, positions[i]]``, or ``fill``
        (a Python float) where ``positions[i]`` is s (padding)."""
        size = x.shape[1]
        inside = self.minimum(positions, self._constant(size - 1, positions.dtype))
        gathered = self.getitem(x, (slice(None), inside, slice(None)))
        padding = self.reshape(self.equal(positions, self._constant(size, positions.dtype)), (1, -1, 1))
        return self.where(padding, self._constant(fill, x.dtype), gathered)

    def window_scatter(self, grad, positions, size):
        """col2im, the backward of ``window_gather``: return (n, size, c) zeros plus, for every i with
        ``positions[i] < size``, ``grad[:, i]`` added at ``positions[i]`` (repeats accumulate)."""
        n, _, c = grad.shape
        target = self.full((n, size + 1, c), 0, grad.dtype)        # row ``size`` takes the padding's share
        self.index_add(target, (slice(None), positions, slice(None)), grad)
        return self.ascontiguous(self.getitem(target, (slice(None), slice(0, size), slice(None))))

    def _window_counts(self, positions, window, size, dtype):
        """(1, p, 1): how many real (not padding) elements each window holds."""
        real = self.astype(self.less(positions, self._constant(size, positions.dtype)), dtype)
        return self.reshape(self.sum(self.reshape(real, (-1, window)), (1,), False), (1, -1, 1))

    def max_pool(self, x, positions, window):
        """Max over windows of ``window`` (k) elements: return ``(out, chosen)``, both (n, p, c).

        ``out[:, i]`` is the maximum of window i's real elements (padding never wins; NaN propagates)
        and ``chosen`` (int64) the flat input position of the FIRST element holding it (the first NaN
        for a NaN), which alone receives the gradient, as in Keras.
        """
        n, size, c = x.shape
        windows = self.reshape(self.window_gather(x, positions, -np.inf), (n, -1, window, c))
        out = self.max(windows, (2,), False)
        is_max = self.astype(self.equal(windows, self.reshape(out, (n, -1, 1, c))), np.int64)
        is_nan = self.astype(self.not_equal(windows, windows), np.int64)
        real = self.astype(self.less(positions, self._constant(size, positions.dtype)), np.int64)
        first = self.argmax(self.mul(self.add(is_max, is_nan), self.reshape(real, (1, -1, window, 1))), 2)
        starts = self.from_numpy(np.arange(0, positions.shape[0], window, dtype=np.int64).reshape(1, -1, 1))
        return out, self.getitem(positions, self.add(first, starts))

    def max_pool_backward(self, grad, chosen, positions, window, size):
        """Backward of ``max_pool``: (n, size, c) zeros plus ``grad[b, i, ch]`` added at
        ``[b, chosen[b, i, ch], ch]``. ``positions`` and ``window`` are the forward's: a backend may
        use them to find the windows that read each input position instead of scattering."""
        n, _, c = grad.shape
        target = self.full((n, size, c), 0, grad.dtype)
        samples = self.from_numpy(np.arange(n, dtype=np.int64).reshape(n, 1, 1))
        channels = self.from_numpy(np.arange(c, dtype=np.int64).reshape(1, 1, c))
        self.index_add(target, (samples, chosen, channels), grad)
        return target

    def average_pool(self, x, positions, window):
        """Mean over each window's real elements (padding left out of the count, as Keras): (n, p, c)."""
        n, size, c = x.shape
        windows = self.reshape(self.window_gather(x, positions, 0.0), (n, -1, window, c))
        return self.div(self.sum(windows, (2,), False), self._window_counts(positions, window, size, x.dtype))

    def average_pool_backward(self, grad, positions, window, size):
        """Backward of ``average_pool``: each window's gradient divided by its count, spread over its real
        elements (``window_scatter``): (n, size, c)."""
        n, p, c = grad.shape
        share = self.div(grad, self._window_counts(positions, window, size, grad.dtype))
        spread = self.broadcast_to(self.reshape(share, (n, p, 1, c)), (n, p, window, c))
        return self.window_scatter(self.reshape(self.ascontiguous(spread), (n, p * window, c)), positions, size)

    def moments(self, x, axis):
        """Mean and biased variance of the 2-D ``x`` over ``axis`` (0: per column, 1: per row), as ONE
        (2, k) array: row 0 the means, row 1 the variances mean((x - mean)^2), never negative."""
        count = self._constant(1.0 / x.shape[axis], x.dtype)
        mean = self.mul(self.sum(x, (axis,), True), count)
        centred = self.sub(x, mean)
        variance = self.mul(self.sum(self.mul(centred, centred), (axis,), True), count)
        return self._stacked(mean, variance)

    def _stacked(self, mean, variance):
        """(2, k) from two (k,)-sized arrays."""
        both = self.full((2, mean.size), 0, mean.dtype)
        self.assign(self.getitem(both, 0), self.reshape(mean, (-1,)))
        self.assign(self.getitem(both, 1), self.reshape(variance, (-1,)))
        return both

    def _normalized(self, x, mean, variance, epsilon, axis):
        """xhat = (x - mean) * r with r = 1 / sqrt(variance + epsilon), the (k,) statistics broadcast
        along ``axis``; returns (xhat, r)."""
        shape = (1, -1) if axis == 0 else (-1, 1)
        variance = self.reshape(variance, shape)
        r = self.div(self._constant(1.0, x.dtype), self.sqrt(self.add(variance, self._constant(epsilon, x.dtype))))
        return self.mul(self.sub(x, self.reshape(mean, shape)), r), r

    def normalize(self, x, mean, variance, gamma, beta, epsilon, axis):
        """y = gamma * (x - mean) / sqrt(variance + epsilon) + beta for the 2-D ``x`` (m, c).

        ``mean`` and ``variance`` hold one value per column (``axis`` 0, k = c: batch normalization)
        or per row (``axis`` 1, k = m: layer normalization), as ``moments(x, axis)`` gives or moving
        statistics; ``gamma`` and ``beta`` are (c,) or None.
        """
        y, _ = self._normalized(x, mean, variance, epsilon, axis)
        if gamma is not None:
            y = self.mul(y, gamma)
        return y if beta is None else self.add(y, beta)

    def normalize_backward(self, x, mean, variance, gamma, grad, epsilon, axis, through_statistics):
        """Backward of ``normalize``: return ``(grad_x, grad_gamma, grad_beta)``.

        With xhat and r as in ``normalize``, h = grad * gamma, and means taken over ``axis``:
        ``grad_beta = sum over rows of grad``, ``grad_gamma = sum over rows of grad * xhat`` (c,), and
        ``grad_x = r * (h - mean(h) - xhat * mean(h * xhat))`` when the statistics are x's own
        (``through_statistics``: batch statistics in training, layer normalization), else ``r * h``.
        """
        xhat, r = self._normalized(x, mean, variance, epsilon, axis)
        h = grad if gamma is None else self.mul(grad, gamma)
        grad_beta = self.sum(grad, (0,), False)
        grad_gamma = self.sum(self.mul(grad, xhat), (0,), False)
        if through_statistics:
            count = self._constant(1.0 / x.shape[axis], x.dtype)
            mean_h = self.mul(self.sum(h, (axis,), True), count)
            mean_hx = self.mul(self.sum(self.mul(h, xhat), (axis,), True), count)
            h = self.sub(self.sub(h, mean_h), self.mul(xhat, mean_hx))
        return self.mul(h, r), grad_gamma, grad_beta

    # In-place optimizer updates. Their scalars come from optimizer_scalars.py, the one home of
    # each formula's constants (Adam's step size among them), shared with every kernel.
    def _scalars(self, scalars, dtype):
        """The fields of an ``optimizer_scalars`` tuple as 0-d arrays of ``dtype``."""
        return type(scalars)(*(self._constant(value, dtype) for value in scalars))

    def sgd_update(self, param, grad, velocity, lr, momentum, nesterov, weight_decay):
        """IN PLACE SGD step (Keras formula). Updates ``param`` and ``velocity``; returns None.

        First ``param *= decay`` with ``decay = 1 - lr * weight_decay`` (decoupled decay). Then,
        with momentum 0 (``velocity`` may be None): ``param -= lr * grad``;
        otherwise ``velocity = momentum * velocity - lr * grad`` and
        ``param += momentum * velocity - lr * grad`` if ``nesterov``, else
        ``param += velocity``. All arrays share one shape and floating dtype.
        """
        self._sgd_step(param, grad, velocity, self._scalars(sgd_scalars(lr, momentum, weight_decay), param.dtype),
                       momentum != 0, nesterov)

    def _sgd_step(self, param, grad, velocity, s, use_momentum, nesterov):
        """``sgd_update`` with its scalars already packed (``SGDScalars`` of 0-d arrays): the kernels' contract."""
        decayed = self.mul(param, s.decay)
        step = self.mul(s.lr, grad)
        if not use_momentum:
            self.assign(param, self.sub(decayed, step))
            return
        new_velocity = self.sub(self.mul(s.momentum, velocity), step)
        self.assign(velocity, new_velocity)
        change = self.sub(self.mul(s.momentum, new_velocity), step) if nesterov else new_velocity
        self.assign(param, self.add(decayed, change))

    def adam_update(self, param, grad, m, v, v_max, step, lr, beta_1, beta_2, epsilon,
                    amsgrad, weight_decay):
        """IN PLACE Adam/AdamW step (Keras formula). Updates ``param``, ``m``, ``v``, ``v_max``.

        ``step`` is the 1-based step count. First ``param *= 1 - lr * weight_decay``
        (AdamW's decoupled decay; 0 for Adam). Then ``m += (1 - beta_1)(grad - m)``,
        ``v += (1 - beta_2)(grad**2 - v)``; with ``amsgrad``, ``v_max = max(v_max, v)``
        is used in place of v (``v_max`` is None otherwise). Finally
        ``param -= alpha * m / (sqrt(v) + epsilon)`` with the bias correction folded
        into the step, ``alpha = lr * sqrt(1 - beta_2**step) / (1 - beta_1**step)``.
        Returns None.
        """
        scalars = adam_scalars(step, lr, beta_1, beta_2, epsilon, weight_decay)
        self._adam_step(param, grad, m, v, v_max, self._scalars(scalars, param.dtype), amsgrad)

    def adam_update_many(self, params, grads, ms, vs, v_maxes, step, lr, beta_1, beta_2, epsilon, amsgrad,
                         weight_decay):
        """IN PLACE ``adam_update`` of many parameters with the same scalars: ``params``, ``grads``,
        ``ms``, ``vs`` and ``v_maxes`` are tuples of equal length (``v_maxes`` entries None without
        AMSGrad), entry i being one parameter's arrays. The result is that of ``adam_update`` on each
        entry in turn; a backend may do them all at once (the CUDA one: one launch, a multi-tensor
        apply). Returns None.
        """
        for param, grad, m, v, v_max in zip(params, grads, ms, vs, v_maxes):
            self.adam_update(param, grad, m, v, v_max, step, lr, beta_1, beta_2, epsilon, amsgrad, weight_decay)

    def _adam_step(self, param, grad, m, v, v_max, s, amsgrad):
        """``adam_update`` with its scalars already packed (``AdamScalars`` of 0-d arrays): the kernels' contract."""
        new_m = self.add(m, self.mul(s.one_minus_beta_1, self.sub(grad, m)))
        new_v = self.add(v, self.mul(s.one_minus_beta_2, self.sub(self.mul(grad, grad), v)))
        self.assign(m, new_m)
        self.assign(v, new_v)
        if amsgrad:
            new_v = self.maximum(v_max, new_v)
            self.assign(v_max, new_v)
        change = self.div(self.mul(s.alpha, new_m), self.add(self.sqrt(new_v), s.epsilon))
        self.assign(param, self.sub(self.mul(param, s.decay), change))

    def rmsprop_update(self, param, grad, mean_square, mean_grad, velocity, lr, rho,
                       momentum, epsilon, centered, weight_decay):
        """IN PLACE RMSprop step (Keras formula). Updates ``param`` and the state arrays.

        First ``param *= 1 - lr * weight_decay``.
        ``mean_square = rho * mean_square + (1 - rho) * grad**2``; if ``centered``,
        ``mean_grad = rho * mean_grad + (1 - rho) * grad`` and
        ``denominator = mean_square + epsilon - mean_grad**2``, else
        ``denominator = mean_square + epsilon`` (epsilon INSIDE the square root).
        ``increment = lr * grad / sqrt(denominator)``. With ``momentum`` > 0,
        ``velocity = momentum * velocity + increment`` and ``param -= velocity``;
        otherwise ``param -= increment``. Unused state arrays may be None.
        Returns None.
        """
        scalars = rmsprop_scalars(lr, rho, momentum, epsilon, weight_decay)
        self._rmsprop_step(param, grad, mean_square, mean_grad, velocity, self._scalars(scalars, param.dtype),
                           centered, momentum > 0)

    def _rmsprop_step(self, param, grad, mean_square, mean_grad, velocity, s, centered, use_momentum):
        """``rmsprop_update`` with its scalars packed (``RMSpropScalars`` of 0-d arrays): the kernels' contract."""
        new_square = self.add(self.mul(s.rho, mean_square), self.mul(self.mul(s.one_minus_rho, grad), grad))
        self.assign(mean_square, new_square)
        denominator = self.add(new_square, s.epsilon)
        if centered:
            new_mean = self.add(self.mul(s.rho, mean_grad), self.mul(s.one_minus_rho, grad))
            self.assign(mean_grad, new_mean)
            denominator = self.sub(denominator, self.mul(new_mean, new_mean))
        change = self.div(self.mul(s.lr, grad), self.sqrt(denominator))
        if use_momentum:
            change = self.add(self.mul(s.momentum, velocity), change)
            self.assign(velocity, change)
        self.assign(param, self.sub(self.mul(param, s.decay), change))

    def adagrad_update(self, param, grad, accumulator, lr, epsilon, weight_decay):
        """IN PLACE Adagrad step (Keras formula). Updates ``param`` and ``accumulator``.

        First ``param *= 1 - lr * weight_decay``. Then
        ``accumulator += grad**2`` and ``param -= lr * grad / sqrt(accumulator + epsilon)``.
        Returns None.
        """
        self._adagrad_step(param, grad, accumulator, self._scalars(adagrad_scalars(lr, epsilon, weight_decay),
                                                                   param.dtype))

    def adamax_update(self, param, grad, m, u, step, lr, beta_1, beta_2, epsilon, weight_decay):
        """IN PLACE Adamax step number ``step`` (from 1; Keras formula). Updates ``param``, ``m`` and ``u``.

        First ``param *= 1 - lr * weight_decay``. Then ``m += (1 - beta_1)(grad - m)``, ``u = max(beta_2 u,
        |grad|)`` (the infinity norm) and ``param -= lr / (1 - beta_1^step) * m / (u + epsilon)``. Returns None.
        """
        self._adamax_step(param, grad, m, u, self._scalars(adamax_scalars(step, lr, beta_1, beta_2, epsilon,
                                                                          weight_decay), param.dtype))

    def _adamax_step(self, param, grad, m, u, s):
        """``adamax_update`` with its scalars packed (``AdamaxScalars`` of 0-d arrays): the kernels' contract."""
        new_m = self.add(m, self.mul(self.sub(grad, m), s.one_minus_beta_1))
        self.assign(m, new_m)
        new_u = self.maximum(self.mul(u, s.beta_2), self.maximum(grad, self.neg(grad)))
        self.assign(u, new_u)
        change = self.div(self.mul(s.step_size, new_m), self.add(new_u, s.epsilon))
        self.assign(param, self.sub(self.mul(param, s.decay), change))

    def nadam_update(self, param, grad, m, v, step, u_product, lr, beta_1, beta_2, epsilon, weight_decay):
        """IN PLACE Nadam step number ``step`` (from 1; Keras formula). Updates ``param``, ``m`` and ``v``.

        ``u_product`` is the product u_1 ... u_step of the momentum schedule u_t = beta_1 (1 - 0.5 * 0.96^t)
        (the optimizer keeps it). First ``param *= 1 - lr * weight_decay``. Then ``m += (1 - beta_1)(grad - m)``,
        ``v += (1 - beta_2)(grad^2 - v)``, ``m_hat = u_{t+1} m / (1 - u_product u_{t+1}) + (1 - u_t) grad /
        (1 - u_product)``, ``v_hat = v / (1 - beta_2^step)`` and ``param -= lr m_hat / (sqrt(v_hat) + epsilon)``.
        Returns None.
        """
        scalars = nadam_scalars(step, u_product, lr, beta_1, beta_2, epsilon, weight_decay)
        self._nadam_step(param, grad, m, v, self._scalars(scalars, param.dtype))

    def _nadam_step(self, param, grad, m, v, s):
        """``nadam_update`` with its scalars packed (``NadamScalars`` of 0-d arrays): the kernels' contract."""
        new_m = self.add(m, self.mul(self.sub(grad, m), s.one_minus_beta_1))
        new_v = self.add(v, self.mul(self.sub(self.mul(grad, grad), v), s.one_minus_beta_2))
        self.assign(m, new_m)
        self.assign(v, new_v)
        step = self.add(self.mul(s.momentum_step, new_m), self.mul(s.gradient_step, grad))
        change = self.div(step, self.add(self.sqrt(self.mul(new_v, s.velocity_scale)), s.epsilon))
        self.assign(param, self.sub(self.mul(param, s.decay), change))

    def lion_update(self, param, grad, m, lr, beta_1, beta_2, weight_decay):
        """IN PLACE Lion step (Chen et al.; Keras formula). Updates ``param`` and ``m``.

        First ``param *= 1 - lr * weight_decay``. Then ``param -= lr * sign(beta_1 m + (1 - beta_1) grad)``
        (sign 0 at 0, NaN stays NaN) and ``m = beta_2 m + (1 - beta_2) grad``. Returns None.
        """
        self._lion_step(param, grad, m, self._scalars(lion_scalars(lr, beta_1, beta_2, weight_decay), param.dtype))

    def _lion_step(self, param, grad, m, s):
        """``lion_update`` with its scalars packed (``LionScalars`` of 0-d arrays): the kernels' contract."""
        blend = self.add(self.mul(m, s.beta_1), self.mul(grad, s.one_minus_beta_1))
        one, zero = self._constant(1, blend.dtype), self._constant(0, blend.dtype)
        # sign: +1 above 0, -1 below, and blend * 0 elsewhere (0 at 0, NaN for NaN)
        sign = self.where(self.greater(blend, zero), one,
                          self.where(self.less(blend, zero), self.neg(one), self.mul(blend, zero)))
        self.assign(param, self.sub(self.mul(param, s.decay), self.mul(s.lr, sign)))
        self.assign(m, self.add(self.mul(m, s.beta_2), self.mul(grad, s.one_minus_beta_2)))

    def adadelta_update(self, param, grad, accumulated_grad, accumulated_delta, lr, rho, epsilon, weight_decay):
        """IN PLACE Adadelta step (Zeiler; Keras formula). Updates ``param`` and both accumulators.

        First ``param *= 1 - lr * weight_decay``. Then ``accumulated_grad = rho a + (1 - rho) grad^2``,
        ``delta = -sqrt(accumulated_delta + epsilon) grad / sqrt(accumulated_grad + epsilon)`` (with the
        accumulated_delta of before this step), ``accumulated_delta = rho s + (1 - rho) delta^2`` and
        ``param += lr delta``. Returns None.
        """
        self._adadelta_step(param, grad, accumulated_grad, accumulated_delta,
                            self._scalars(adadelta_scalars(lr, rho, epsilon, weight_decay), param.dtype))

    def _adadelta_step(self, param, grad, accumulated_grad, accumulated_delta, s):
        """``adadelta_update`` with its scalars packed (``AdadeltaScalars`` of 0-d arrays): the kernels' contract."""
        new_grad = self.add(self.mul(s.rho, accumulated_grad), self.mul(s.one_minus_rho, self.mul(grad, grad)))
        self.assign(accumulated_grad, new_grad)
        delta = self.neg(self.div(self.mul(self.sqrt(self.add(accumulated_delta, s.epsilon)), grad),
                                  self.sqrt(self.add(new_grad, s.epsilon))))
        self.assign(accumulated_delta, self.add(self.mul(s.rho, accumulated_delta),
                                                self.mul(s.one_minus_rho, self.mul(delta, delta))))
        self.assign(param, self.add(self.mul(param, s.decay), self.mul(s.lr, delta)))

    def ftrl_update(self, param, grad, accumulator, linear, lr, learning_rate_power, l1, l2, l2_shrinkage, beta,
                    weight_decay):
        """IN PLACE FTRL-proximal step (McMahan et al.; Keras formula). Updates ``param``, ``accumulator`` (n)
        and ``linear`` (z).

        First ``q = param * (1 - lr * weight_decay)``. Then, with c = -learning_rate_power and
        l2' = l2 + beta / (2 lr): ``g' = grad + 2 l2_shrinkage q``, ``n' = n + grad^2``,
        ``z += g' - (n'^c - n^c) / lr * q``, ``param = (clip(z, -l1, l1) - z) / (n'^c / lr + 2 l2')`` and
        ``n = n'``. Returns None.
        """
        scalars = ftrl_scalars(lr, learning_rate_power, l1, l2, l2_shrinkage, beta, weight_decay)
        self._ftrl_step(param, grad, accumulator, linear, self._scalars(scalars, param.dtype))

    def _ftrl_step(self, param, grad, accumulator, linear, s):
        """``ftrl_update`` with its scalars packed (``FtrlScalars`` of 0-d arrays): the kernels' contract."""
        decayed = self.mul(param, s.decay)
        new_accumulator = self.add(accumulator, self.mul(grad, grad))
        grown = self.power(new_accumulator, s.power)
        shift = self.mul(self.div(self.sub(grown, self.power(accumulator, s.power)), s.lr), decayed)
        new_linear = self.add(linear, self.sub(self.add(grad, self.mul(s.two_l2_shrinkage, decayed)), shift))
        clipped = self.minimum(self.maximum(new_linear, self.neg(s.l1)), s.l1)
        quadratic = self.add(self.div(grown, s.lr), s.two_l2)
        self.assign(linear, new_linear)
        self.assign(param, self.div(self.sub(clipped, new_linear), quadratic))
        self.assign(accumulator, new_accumulator)

    def _adagrad_step(self, param, grad, accumulator, s):
        """``adagrad_update`` with its scalars packed (``AdagradScalars`` of 0-d arrays): the kernels' contract."""
        new_accumulator = self.add(accumulator, self.mul(grad, grad))
        self.assign(accumulator, new_accumulator)
        change = self.div(self.mul(s.lr, grad), self.sqrt(self.add(new_accumulator, s.epsilon)))
        self.assign(param, self.sub(self.mul(param, s.decay), change))
