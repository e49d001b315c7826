"""Reverse-mode automatic differentiation (define-by-run).

Every differentiable operation is a ``Function`` subclass with two static
methods written with backend primitives:

* ``forward(ctx, *arrays, **params)`` computes the output array and saves on
  ``ctx`` what the backward needs (arrays, never Tensors, so no cycles form);
* ``backward(ctx, grad)`` returns one gradient array (or None) per input.

``Function.apply`` runs the forward and, when gradients are wanted, records a
``Node`` on the output tensor linking it to its inputs. ``backward`` walks that
graph once in reverse topological order. Outputs and gradients are made with the
class of the tensors they come from (``type(t)._make``), so this module knows
tensors only as ``TensorBase`` and sits below ops, functional and tensor.

Accumulation rule: gradients reaching a leaf tensor (one created by the user
with ``requires_grad=True``) are SUMMED into its ``.grad``, across paths within
one backward and across backward calls, until ``zero_grad()`` resets it to None.
Non-leaf tensors get a ``.grad`` only if ``retain_grad()`` was called on them.

After ``backward`` the graph is freed (each node drops its inputs and saved
arrays) unless ``retain_graph=True``; a second backward through a freed graph
raises RuntimeError.
"""
import threading
from collections import Counter

import numpy as np

from .backends.constants import shared_constant
from .tensor_base import TensorBase

_grad_state = threading.local()


def is_grad_enabled():
    """Return True when operations record the graph (the default, per thread)."""
    return getattr(_grad_state, "enabled", True)


class _GradMode:
    """Context manager and decorator that sets gradient recording for a block."""

    enabled = True

    def __enter__(self):
        self._previous = is_grad_enabled()
        _grad_state.enabled = self.enabled
        return self

    def __exit__(self, *exc_info):
        _grad_state.enabled = self._previous
        return False

    def __call__(self, function):
        def wrapper(*args, **kwargs):
            with type(self)():
                return function(*args, **kwargs)
        wrapper.__name__ = function.__name__
        wrapper.__doc__ = function.__doc__
        return wrapper


class no_grad(_GradMode):
    """Disable graph recording: ``with nnengine.no_grad(): ...`` or as a decorator.

    Results computed inside do not require grad and hold no graph, which saves
    memory during evaluation and parameter updates.
    """

    enabled = False


class enable_grad(_GradMode):
    """Re-enable graph recording inside a ``no_grad`` block."""

    enabled = True


class Node:
    """One recorded operation: the ``ctx`` of a Function, linking an output to its inputs.

    Attributes:
        function: the Function subclass that ran.
        backend: the Backend its arrays belong to.
        inputs: the input Tensors (None for absent optional inputs); None once freed.
        needs_input_grad: one bool per input.
        saved: the arrays stored by ``save_for_backward``; None once freed.
        params: the op's keyword arguments; forward may add what backward needs (an input shape).
        output_backend: the backend of the output, the inputs' one unless forward moves the data.
    """

    __slots__ = ("function", "backend", "inputs", "needs_input_grad", "saved", "params",
                 "output_backend", "freed")

    def __init__(self, function, backend, inputs, needs_input_grad):
        self.function = function
        self.backend = backend
        self.inputs = inputs
        self.needs_input_grad = needs_input_grad
        self.saved = ()
        self.params = {}
        self.output_backend = backend
        self.freed = False

    @property
    def name(self):
        """The name of the operation (its Function class)."""
        return self.function.__name__

    def save_for_backward(self, *arrays):
        """Keep backend arrays for the backward pass."""
        self.saved = arrays

    def release(self):
        """Drop inputs and saved arrays so the graph below this node can be collected."""
        self.inputs = None
        self.saved = None
        self.params = None
        self.freed = True

    def __repr__(self):
        return f"<{self.name}Backward>"


class Function:
    """Base class of differentiable operations; subclasses define forward and backward."""

    @staticmethod
    def forward(ctx, *arrays, **params):  # pragma: no cover - abstract
        """Compute the output array from input arrays; save what backward needs on ctx."""
        raise NotImplementedError  # abstract: every Function subclass defines it

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover - abstract
        """Return a tuple with one gradient array (or None) per forward input."""
        raise NotImplementedError  # abstract: every Function subclass defines it

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on Tensors (None allowed for optional inputs) and record it when needed."""
        backend = tensor_type = None
        arrays, needs = [], []
        for t in inputs:            # one pass: the common device, the arrays, which inputs need a gradient
            if t is None:
                arrays.append(None)
                needs.append(False)
                continue
            if backend is None:
                backend, tensor_type = t._backend, type(t)
            elif t._backend is not backend:
                _common_backend(cls.__name__, [t for t in inputs if t is not None])   # raises, naming both
            arrays.append(t._data)
            needs.append(t.requires_grad)
        ctx = Node(cls, backend, inputs, tuple(needs))
        ctx.params = params
        out = cls.forward(ctx, *arrays, **params)
        # Only float results carry gradients (a cast to int ends the graph).
        track = ctx.needs_input_grad.count(True) > 0 and out.dtype.kind == "f" and is_grad_enabled()
        result = tensor_type._make(out, ctx.output_backend)     # the inputs' class: Tensor
        if track:
            result.requires_grad = True
            result._node = ctx
        return result


def _common_backend(op_name, tensors):
    """Return the backend all ``tensors`` share, or raise naming the devices."""
    backend = tensors[0]._backend
    for t in tensors[1:]:
        if t._backend is not backend:
            raise ValueError(
                f"{op_name}: tensors are on different devices, {backend.device!r} and "
                f"{t._backend.device!r}; move one with .to(device) (nnengine never copies silently)"
            )
    return backend


def reduce_to_shape(backend, grad, shape):
    """Sum a broadcast gradient back to ``shape``: THE one place broadcasting is undone.

    If y = broadcast(x) then dL/dx = sum of dL/dy over every axis that broadcasting
    added (leading axes) or stretched (axes where x has size 1).
    """
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, size in enumerate(shape) if size == 1 and grad.shape[extra + i] != 1
    )
    summed = backend.sum(grad, axes, keepdims=True)
    return backend.reshape(summed, shape)


def _graph_in_reverse_order(root):
    """Tensors that need grad, reachable from root, each after every tensor that uses it.

    Iterative depth-first search, so deep graphs do not hit Python's recursion limit.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        tensor, children_done = stack.pop()
        if children_done:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        node = tensor._node
        if node is not None and not node.freed:
            for parent in node.inputs:
                if parent is not None and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    order.reverse()
    return order


def _accumulate(tensor, grad_array, owned):
    """Add a gradient into ``tensor.grad`` (the accumulation rule in the module docstring).

    ``owned``: this backward made ``grad_array`` and handed it to this tensor alone, so ``.grad`` may
    keep it; otherwise it is copied (backward may hand one array, or views of it, to several tensors).
    """
    if tensor.grad is None:
        data = grad_array if owned else tensor._backend.copy(grad_array)
        tensor.grad = type(tensor)._make(data, tensor._backend)
    else:
        tensor.grad = type(tensor)._make(tensor._backend.add(tensor.grad._data, grad_array), tensor._backend)


def _owned(handed, grad_array):
    """Whether ``grad_array`` is held by one pending entry only and is not a view of another array.

    ``handed`` counts, by id, the pending entries (and kept ``.grad``s) holding each gradient array of
    this backward; an entry is dropped when its array leaves pending, so a later array that reuses a
    freed array's id starts from zero.
    """
    return handed[id(grad_array)] == 1 and getattr(grad_array, "base", None) is None


def _let_go(handed, grad_array):
    """One pending entry no longer holds ``grad_array``."""
    key = id(grad_array)
    handed[key] -= 1
    if handed[key] <= 0:
        del handed[key]


def _initial_grad(root, grad):
    """The seed dL/droot: ones for a one-element root, else the given gradient checked."""
    backend = root._backend
    if grad is None:
        if root.size != 1:
            raise ValueError(
                f"backward() on a tensor of shape {root.shape} needs a gradient argument of that "
                "shape; only one-element tensors get an implicit gradient of 1"
            )
        if root.shape == ():
            return shared_constant(backend, 1, root.dtype)
        return backend.full(root.shape, 1, root.dtype)
    if not isinstance(grad, TensorBase):
        grad = type(root)(np.asarray(grad), dtype=root.dtype, device=root.device)
    if grad.shape != root.shape:
        raise ValueError(f"backward(): gradient has shape {grad.shape}, expected the tensor's shape {root.shape}")
    _common_backend("backward", [root, grad])
    return backend.astype(grad._data, root.dtype)


def backward(root, grad=None, retain_graph=False):
    """Accumulate d(root)/d(leaf) into the ``.grad`` of every leaf that requires grad.

    Args:
        root: the Tensor to differentiate (usually a scalar loss).
        grad: dL/droot; may be omitted for a one-element root (it is then 1).
        retain_graph: keep the graph so backward can run through it again.
    """
    if not root.requires_grad:
        raise RuntimeError("backward(): this tensor does not require grad and has no graph")
    if root._node is not None and root._node.freed:
        raise RuntimeError(_FREED_MESSAGE)
    seed = _initial_grad(root, grad)
    pending = {id(root): seed}
    handed = Counter({id(seed): 2})     # the seed may be a shared constant or the caller's array: never kept
    with no_grad():
        for tensor in _graph_in_reverse_order(root):
            grad_array = pending.pop(id(tensor), None)
            if grad_array is None:
                continue
            node = tensor._node
            if node is None or tensor._retains_grad:
                owned = _owned(handed, grad_array)
                _accumulate(tensor, grad_array, owned)
                if owned:
                    handed[id(grad_array)] += 1     # kept as this .grad: another tensor gets a copy
            if node is not None:
                _propagate(node, grad_array, pending, retain_graph, handed)
            _let_go(handed, grad_array)


_FREED_MESSAGE = (
    "backward() through a graph that was already freed: the first backward released its "
    "saved arrays; pass retain_graph=True to it to differentiate twice"
)


def _propagate(node, grad_array, pending, retain_graph, handed):
    """Run one node's backward and add each input's gradient into ``pending``; ``handed`` counts how
    often each gradient array was handed out (an array passed on unchanged is counted again)."""
    if node.freed:
        raise RuntimeError(_FREED_MESSAGE)
    input_grads = node.function.backward(node, grad_array)
    backend = node.backend
    for parent, parent_grad in zip(node.inputs, input_grads):
        if parent is None or parent_grad is None or not parent.requires_grad:
            continue
        parent_grad = reduce_to_shape(backend, parent_grad, parent.shape)
        if parent_grad.dtype != parent.dtype:
            parent_grad = backend.astype(parent_grad, parent.dtype)
        key = id(parent)
        if key in pending:
            earlier = pending[key]
            pending[key] = backend.add(earlier, parent_grad)
            _let_go(handed, earlier)
        else:
            pending[key] = parent_grad
        handed[id(pending[key])] += 1
    if not retain_graph:
        node.release()
