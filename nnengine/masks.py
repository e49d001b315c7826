"""Keras's masks: which steps of a batch of sequences are padding, carried from the layer that knows it to the
layers that must skip it.

Sequences of different lengths are padded to one length to make a batch. ``Embedding(mask_zero=True)`` (index 0
is padding) and ``Masking(mask_value)`` (a step whose features all equal the value is padding) say which steps
are real: a bool Tensor (batch, steps), True where a step holds data. As in Keras 3 the mask rides on the
output Tensor (``tensor._keras_mask``) and ``Layer.invoke`` moves it on:

* a layer whose ``call`` takes ``mask`` receives the mask of its input (a list of them for a merge layer);
* after the call, a layer that supports masking (``supports_masking``, or its own ``compute_mask``) sets its
  output's mask to ``compute_mask(inputs, mask)``: by default the input's mask, passed on unchanged (Dense,
  Dropout, the normalizations, activations, TimeDistributed); a recurrent layer passes it on only with
  ``return_sequences``; GlobalAveragePooling1D consumes it;
* a layer that does not support masking (Flatten, Conv1D, ...) drops the mask, with a warning, as Keras does.

Who uses it: SimpleRNN, LSTM and GRU keep their state through a padded step (``recurrent_reference.py``);
GlobalAveragePooling1D averages the real steps only; and a mask that reaches a model's output weights its loss
and its metrics, as Keras's ``apply_mask`` does (``loss_weights``).

Masks are computed from the batch with backend primitives (a comparison, a reduction), so a compiled step
captures them like any other op.
"""
import inspect
import warnings

import numpy as np

from . import functional as F
from .tensor import full
from .tensor_base import TensorBase

__all__ = ["mask_of", "has_mask", "call_arguments", "propagate", "merged_mask", "concatenated_mask", "step_mask",
           "loss_weights", "masked_hits", "with_mask_column", "metric_weights"]


def mask_of(x):
    """The mask riding on ``x`` (a Tensor, or None), or a list of them for a list of inputs."""
    if isinstance(x, (list, tuple)):
        return [getattr(item, "_keras_mask", None) for item in x]
    return getattr(x, "_keras_mask", None)


def has_mask(mask):
    """Whether ``mask`` (one, or a list) holds any mask."""
    if isinstance(mask, list):
        return any(item is not None for item in mask)
    return mask is not None


def _call_takes_mask(layer):
    cls = type(layer)
    takes = cls.__dict__.get("_call_takes_mask")
    if takes is None:
        takes = "mask" in inspect.signature(layer.call).parameters
        cls._call_takes_mask = takes
    return takes


def call_arguments(layer, mask):
    """{'mask': mask} when ``layer.call`` takes a mask and the input carries one, else {}."""
    return {"mask": mask} if has_mask(mask) and _call_takes_mask(layer) else {}


def propagate(layer, inputs, output, mask, passes):
    """Set ``output``'s mask after ``layer`` ran on ``inputs`` (whose mask was ``mask``), as Keras does: when
    the layer ``passes`` masks (it supports masking), to its ``compute_mask``; else the mask is dropped, with a
    warning when there was one. An output that already carries a mask (the layer set it) keeps it."""
    if not isinstance(output, TensorBase) or output._keras_mask is not None:
        return
    if passes:
        output._keras_mask = layer.compute_mask(inputs, mask)
    elif has_mask(mask):
        warnings.warn(f"Layer {layer.name!r} (of type {type(layer).__name__}) was passed an input with a mask "
                      "attached to it, but it does not support masking: downstream layers will not see the mask",
                      UserWarning, stacklevel=4)


def merged_mask(masks):
    """Keras's mask of an elementwise merge: None unless every input has one, then their OR (a step is data when
    it is in any input)."""
    if not isinstance(masks, list) or any(mask is None for mask in masks):
        return None
    merged = masks[0].astype(np.float32)
    for mask in masks[1:]:
        merged = F.maximum(merged, mask.astype(np.float32))
    return merged > 0


def concatenated_mask(inputs, masks, axis):
    """Keras's mask of a Concatenate along ``axis`` of its inputs (rank r; masks of rank r - 1, an input without
    one counting as kept everywhere): along the last axis, the OR of the masks; along another, the masks joined
    along it. None when no input has a mask."""
    if not isinstance(masks, list) or not has_mask(masks):
        return None
    every = [mask if mask is not None else full(x.shape[:-1], True, np.bool_, x.device)
             for x, mask in zip(inputs, masks)]
    if axis == inputs[0].ndim - 1:
        return merged_mask(every)
    return F.concatenate([mask.astype(np.float32) for mask in every], axis=axis) > 0


def step_mask(owner, mask, x):
    """A (batch, steps) mask of the sequence ``x`` (batch, steps, ...), checked: a bool Tensor."""
    if not isinstance(mask, TensorBase):
        mask = type(x)(np.asarray(mask), device=x.device)
    if mask.shape != tuple(x.shape[:2]):
        raise ValueError(f"layer {owner!r}: the mask must have shape {tuple(x.shape[:2])} (batch, steps) for inputs "
                         f"of shape {tuple(x.shape)}, got {tuple(mask.shape)}")
    return mask if mask.dtype == np.bool_ else mask != 0


def loss_weights(mask, per_entry, sample_weights, reduction):
    """The weights of the per-entry losses of an output that carries ``mask``, as Keras's ``apply_mask`` makes them:
    for a mean ("sum_over_batch_size") a kept entry weighs total / kept, so the mean runs over the kept entries
    only, mean(loss * w) = sum over kept of loss / kept; otherwise 1 or 0. Times ``sample_weights`` (n,) if any.

    ``mask`` (n, ...) must match the leading axes of ``per_entry``'s shape; a mask that covers the output's last
    axis too (the losses reduce it) is reduced to whether any entry of the row is kept."""
    mask = _entry_mask(mask, per_entry.ndim)
    if mask.shape != per_entry.shape[:mask.ndim]:
        raise ValueError(f"the output's mask has shape {mask.shape}, which does not fit its losses' shape "
                         f"{per_entry.shape}")
    weights = mask.astype(per_entry.dtype)
    if reduction in ("sum_over_batch_size", "mean"):
        total = float(weights.size)
        kept = F.maximum(weights.sum(), 1.0)          # no kept entry: every weight is 0 anyway, never 0 / 0
        weights = weights * (total / kept)
    if weights.ndim < per_entry.ndim:
        weights = weights.reshape(*weights.shape, *[1] * (per_entry.ndim - weights.ndim))
    if sample_weights is not None:
        shape = (sample_weights.shape[0], *[1] * (weights.ndim - 1))
        weights = weights * sample_weights.reshape(*shape).astype(per_entry.dtype)
    return weights


def _entry_mask(mask, ndim):
    """``mask`` over the leading ``ndim`` axes of an output (a mask over all its axes: any entry kept, as a count
    above 0: a sum, which a compiled plan lowers)."""
    while mask.ndim > ndim:
        mask = mask.astype(np.float32).sum(axis=-1) > 0
    return mask


def masked_hits(predictions, targets, mask):
    """An accuracy's hits on a masked output, counted on the device: the array [hits among the kept entries,
    kept entries] (float64). ``targets``: int64 class labels (...) or rows (..., classes), as
    ``Backend.argmax_matches`` takes them. Labels of padded entries become -1, a class no argmax gives, so
    that primitive (which a compiled plan lowers) counts the kept entries' hits only."""
    last = predictions.ndim - 1
    kept = _entry_mask(mask, last)
    if targets.ndim == last:
        labels = F.where(kept, targets, full(targets.shape, -1, targets.dtype, targets.device))
        hits = type(predictions)._make(predictions.backend.argmax_matches(predictions._data, labels._data),
                                       predictions.backend).astype(np.float64)
    else:
        hits = ((predictions.argmax(axis=last) == targets.argmax(axis=last)).astype(np.float64) *
                kept.astype(np.float64)).sum()
    count = kept.astype(np.float64).reshape(1, -1).sum(axis=1)          # (1,): the kept entries
    # hits is 0-d, and a plan's lowering cannot reshape a 0-d result: broadcasting it against count makes it (1,)
    return F.concatenate([count * 0.0 + hits, count])


def with_mask_column(predictions, mask):
    """The predictions (..., k) with the mask of their entries as one more last column (..., k + 1), so that
    one array brings both to the host metrics (``metric_weights`` splits them)."""
    kept = _entry_mask(mask, predictions.ndim - 1).astype(predictions.dtype)
    return F.concatenate([predictions, kept.reshape(*kept.shape, 1)], axis=-1)


def metric_weights(output, sample_weight):
    """(the predictions, the mask, the mask times the per-sample ``sample_weight`` (n,), or the mask when there is
    none) from ``with_mask_column``'s host array: the weights of a masked output's metrics and weighted metrics,
    as Keras weights them."""
    predictions, kept = output[..., :-1], output[..., -1]
    if sample_weight is None:
        return predictions, kept, kept
    sample_weight = np.asarray(sample_weight, np.float64)
    return predictions, kept, kept * sample_weight.reshape(sample_weight.shape[0], *[1] * (kept.ndim - 1))
