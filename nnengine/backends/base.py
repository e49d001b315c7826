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
  promotes before calling (see ``nnengine.tensor.result_dtype``).
* Binary primitives broadcast with numpy's rules. The core has already checked
  that the shapes broadcast, so a backend may assume they do.
* Primitives return new arrays and never modify their inputs, except those whose
  name ends in ``_update`` and ``index_add``, which write in place as stated.
* View primitives (reshape, transpose, broadcast_to, getitem with basic indices)
  may return views that share memory with their input; the core never writes
  through them.
* ``axes`` arguments are tuples of non-negative, distinct axis numbers, already
  normalised by the core.
"""
from abc import ABC, abstractmethod

#: Activation names understood by the fused dense primitives.
DENSE_ACTIVATIONS = ("none", "relu", "sigmoid", "tanh", "softmax")


class DeviceUnavailableError(RuntimeError):
    """A device string is valid but nothing on this machine can compute on it."""


class Backend(ABC):
    """Abstract base of every compute backend.

    Attributes:
        name: the registry name of the implementation ("numpy", "numba", "cupy").
        device: the canonical device string this instance computes on
            ("numpy", "cpu", "cuda:0", ...).
    """

    name = "abstract"

    def __init__(self, device):
        self.device = device

    def __repr__(self):
        return f"<{type(self).__name__} device={self.device!r}>"

    @classmethod
    def primitives(cls):
        """Return the sorted names of every primitive a backend must implement."""
        return sorted(
            name for name, value in vars(Backend).items()
            if getattr(value, "__isabstractmethod__", False)
        )

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
    # Fused neural-network primitives
    # ------------------------------------------------------------------
    @abstractmethod
    def dense_forward(self, x, w, b, activation):
        """Fused dense layer: return ``act(x @ w + b)``.

        Shapes: ``x`` (n, in), ``w`` (in, out) in Keras order, ``b`` (out,) or None
        for no bias; result (n, out), all one floating dtype. ``activation`` is
        one of ``DENSE_ACTIVATIONS``; softmax is over the last axis.
        """

    @abstractmethod
    def dense_backward(self, x, w, out, grad_out, activation, need_grad_x):
        """Backward of ``dense_forward``: return ``(grad_x, grad_w, grad_b)``.

        ``out`` is the forward's result and ``grad_out`` the gradient of the loss
        with respect to it, both (n, out). With ``dZ`` the gradient before the
        activation (computed from ``out``): ``grad_w = x.T @ dZ`` (in, out),
        ``grad_b = sum of dZ over rows`` (out,), and ``grad_x = dZ @ w.T`` (n, in),
        or None when ``need_grad_x`` is false (the first layer needs none).
        """

    @abstractmethod
    def softmax(self, x, axis):
        """Return ``exp(x - max) / sum(exp(x - max))`` along the int ``axis`` (stable for any finite x)."""

    @abstractmethod
    def log_softmax(self, x, axis):
        """Return ``x - max - log(sum(exp(x - max)))`` along the int ``axis`` (stable log-sum-exp)."""

    @abstractmethod
    def softmax_cross_entropy(self, logits, targets, need_grad):
        """Fused softmax cross-entropy: return ``(losses, grad_logits)``.

        ``logits`` is (n, c) floating. ``targets`` is either (n, c) of the
        logits' dtype (one-hot, soft, or unnormalised weights t) or (n,) int64
        class indices in [0, c). Per row, with p = softmax(logits):
        ``losses[i] = -sum_j t_ij * log p_ij`` (n,), and
        ``grad_logits[i, j] = p_ij * sum_k t_ik - t_ij`` (n, c), the gradient of
        ``losses[i]`` with respect to ``logits[i]``; for class indices t is the
        one-hot row. ``grad_logits`` is None when ``need_grad`` is false.
        """

    @abstractmethod
    def sgd_update(self, param, grad, velocity, lr, momentum, nesterov, weight_decay):
        """IN PLACE SGD step (Keras formula). Updates ``param`` and ``velocity``; returns None.

        First ``param -= lr * weight_decay * param`` when ``weight_decay`` > 0. Then,
        with momentum 0 (``velocity`` may be None): ``param -= lr * grad``;
        otherwise ``velocity = momentum * velocity - lr * grad`` and
        ``param += momentum * velocity - lr * grad`` if ``nesterov``, else
        ``param += velocity``. All arrays share one shape and floating dtype.
        """

    @abstractmethod
    def adam_update(self, param, grad, m, v, v_max, step, lr, beta_1, beta_2, epsilon,
                    amsgrad, weight_decay):
        """IN PLACE Adam/AdamW step (Keras formula). Updates ``param``, ``m``, ``v``, ``v_max``.

        ``step`` is the 1-based step count. First ``param -= lr * weight_decay * param``
        (AdamW's decoupled decay; 0 for Adam). Then ``m += (1 - beta_1)(grad - m)``,
        ``v += (1 - beta_2)(grad**2 - v)``; with ``amsgrad``, ``v_max = max(v_max, v)``
        is used in place of v (``v_max`` is None otherwise). Finally
        ``param -= alpha * m / (sqrt(v) + epsilon)`` with the bias correction folded
        into the step, ``alpha = lr * sqrt(1 - beta_2**step) / (1 - beta_1**step)``.
        Returns None.
        """

    @abstractmethod
    def rmsprop_update(self, param, grad, mean_square, mean_grad, velocity, lr, rho,
                       momentum, epsilon, centered, weight_decay):
        """IN PLACE RMSprop step (Keras formula). Updates ``param`` and the state arrays.

        First ``param -= lr * weight_decay * param`` when ``weight_decay`` > 0.
        ``mean_square = rho * mean_square + (1 - rho) * grad**2``; if ``centered``,
        ``mean_grad = rho * mean_grad + (1 - rho) * grad`` and
        ``denominator = mean_square - mean_grad**2 + epsilon``, else
        ``denominator = mean_square + epsilon`` (epsilon INSIDE the square root).
        ``increment = lr * grad / sqrt(denominator)``. With ``momentum`` > 0,
        ``velocity = momentum * velocity + increment`` and ``param -= velocity``;
        otherwise ``param -= increment``. Unused state arrays may be None.
        Returns None.
        """

    @abstractmethod
    def adagrad_update(self, param, grad, accumulator, lr, epsilon, weight_decay):
        """IN PLACE Adagrad step (Keras formula). Updates ``param`` and ``accumulator``.

        First ``param -= lr * weight_decay * param`` when ``weight_decay`` > 0. Then
        ``accumulator += grad**2`` and ``param -= lr * grad / sqrt(accumulator + epsilon)``.
        Returns None.
        """
