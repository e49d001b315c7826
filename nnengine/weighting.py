"""Per-sample weights for fit, evaluate and *_on_batch: ``sample_weight`` and ``class_weight`` as Keras 3 reads them.

* ``sample_weight``: one finite number per sample, shape (n,) or (n, 1).
* ``class_weight``: {class index: weight}; each sample gets the weight of its class (the argmax of a
  one-hot target, the integer label, or the rounded value of a single output), 1.0 for classes the
  dict does not name. Giving both is an error, as in Keras. As in Keras, class weights apply to the
  training samples only (validation_split's samples are not weighted), while sample_weight is split
  with the samples, and validation_data may carry its own as a third item.

The loss then weights each sample's value and divides the weighted sum by the number of samples
(losses.Loss._reduce). Compiled metrics are not weighted; ``weighted_metrics`` are (Keras's rule; trainer_metrics.py).
"""
import numbers

import numpy as np

from .utils import to_host

__all__ = ["sample_weights"]


def sample_weights(method, sample_weight, class_weight, y, count, output_shape=None):
    """The per-sample weights as a float64 array of ``count``, or None when neither argument is given.
    ``output_shape``: the model's, when known (class weights need one class per sample).

    Raises:
        TypeError: the weights are not numbers, or class_weight is not a dict of numbers.
        ValueError: the wrong number of weights, a NaN or infinite weight, both arguments at once, or class
            weights for a model that predicts a class per position (a sequence), which Keras refuses too.
    """
    if sample_weight is not None and class_weight is not None:
        raise ValueError(f"{method}: give sample_weight or class_weight, not both (as Keras requires)")
    if sample_weight is not None:
        return _checked_sample_weight(method, sample_weight, count)
    if class_weight is not None:
        return _from_class_weight(method, class_weight, y, output_shape)
    return None


def _checked_sample_weight(method, sample_weight, count):
    weights = np.asarray(to_host(sample_weight))
    if weights.dtype.kind not in "biuf" or weights.dtype.kind == "b":
        raise TypeError(f"{method}: sample_weight must hold numbers, got dtype {weights.dtype}")
    if weights.ndim == 2 and weights.shape[1] == 1:
        weights = weights[:, 0]
    if weights.shape != (count,):
        raise ValueError(f"{method}: sample_weight must have one weight per sample, shape ({count},), got shape "
                         f"{weights.shape}")
    weights = weights.astype(np.float64)
    if not np.all(np.isfinite(weights)):
        raise ValueError(f"{method}: sample_weight holds NaN or infinite values")
    return weights


def _from_class_weight(method, class_weight, y, output_shape):
    if not isinstance(class_weight, dict):
        raise TypeError(f"{method}: class_weight must be a dict {{class index: weight}}, got "
                        f"{type(class_weight).__name__}")
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, (numbers.Integral, np.integer)) or \
                isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)) or \
                not np.isfinite(value):
            raise TypeError(f"{method}: class_weight must map int class indices to finite numbers, got "
                            f"{key!r}: {value!r}")
    classes = np.asarray(y)
    if classes.ndim > 2 or output_shape is not None and len(output_shape) > 2:
        shape = tuple(output_shape) if output_shape is not None else classes.shape
        raise ValueError(f"{method}: class_weight needs one class per sample, but the targets have one per position "
                         f"(predictions of shape {shape}); weight the samples with sample_weight instead (Keras "
                         "refuses class_weight for 3+ dimensional targets too)")
    if classes.ndim > 1 and classes.shape[-1] != 1:
        classes = np.argmax(classes, axis=-1)
    classes = np.round(classes.reshape(len(classes))).astype(np.int64)
    return np.array([float(class_weight.get(int(c), 1.0)) for c in classes])
