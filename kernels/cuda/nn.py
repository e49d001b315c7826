"""Launchers for nn.cu: the dense epilogue and its backward, row softmax, softmax cross-entropy.

Each function takes C-contiguous cupy arrays (outputs allocated by the caller), converts sizes
and flags to int64 and scalars to the arrays' dtype as the kernels declare them, and launches
with the configuration from ``launch.py``.
"""
import numpy as np

from ..activation_codes import activation_code
from . import launch, loader

SOURCE = "nn.cu"

_i = np.int64


def bias_activation(z, bias, activation):
    """In place on z (rows, cols): z = act(z + bias); ``bias`` (cols,) or None; not softmax."""
    rows, cols = z.shape
    grid, block = launch.matrix(rows, cols)
    loader.function(SOURCE, "bias_activation", z.dtype)(
        grid, block, (z, z if bias is None else bias, _i(rows), _i(cols), _i(bias is not None),
                      _i(activation_code(activation))))


def activation_grad_bias(out, grad_out, dz, activation, reduce_columns):
    """dz = grad_out * act'(out) into ``dz``; returns the column sums of dz (the bias gradient).

    ``reduce_columns(partials)`` sums a (block rows, cols) array over its rows; it is used only when
    the rows are shared among several block rows (see launch.columns), never with atomics.
    """
    import cupy
    rows, cols = out.shape
    grid, block = launch.columns(rows, cols)
    block_rows = grid[1]
    partials = cupy.empty(cols if block_rows == 1 else (block_rows, cols), out.dtype)
    loader.function(SOURCE, "activation_grad_bias", out.dtype)(
        grid, block, (out, grad_out, dz, partials, _i(rows), _i(cols), _i(activation_code(activation))))
    return partials if block_rows == 1 else reduce_columns(partials)


def softmax_rows(x, bias, out, log_output):
    """out = softmax (or log-softmax) of each row of x + bias; ``bias`` (cols,) or None."""
    rows, cols = x.shape
    grid, block = launch.rows(rows)
    loader.function(SOURCE, "softmax_rows", x.dtype)(
        grid, block, (x, x if bias is None else bias, out, _i(rows), _i(cols), _i(bias is not None),
                      _i(log_output)))


def softmax_grad_rows(out, grad_out, dz):
    """dz = out * (grad_out - rowsum(grad_out * out)), the backward of a row softmax."""
    rows, cols = out.shape
    grid, block = launch.rows(rows)
    loader.function(SOURCE, "softmax_grad_rows", out.dtype)(
        grid, block, (out, grad_out, dz, _i(rows), _i(cols)))


def softmax_cross_entropy(logits, targets, losses, grad, need_grad):
    """Per-row losses (and the gradient into ``grad`` when ``need_grad``).

    ``targets`` is (rows, cols) of the logits' dtype, or (rows,) int64 class indices.
    """
    rows, cols = logits.shape
    grid, block = launch.rows(rows)
    kernel = "softmax_xent_dense" if targets.ndim == 2 else "softmax_xent_index"
    loader.function(SOURCE, kernel, logits.dtype)(
        grid, block, (logits, targets, losses, grad, _i(rows), _i(cols), _i(need_grad)))
