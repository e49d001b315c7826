"""Argument checks of the public API: one clear exception per bad value, naming who, what and why.

Every public argument of fit/evaluate/predict/compile, the layers, callbacks and optimizers goes
through one of these before it is used, so that a wrong type or value fails at once with a
``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, wrong value) that names the owner
(``"fit"``, ``"Dense 'dense_1'"``, ``"EarlyStopping"``), the argument, what was expected and what came.

Numbers are Python or numpy numbers, never strings (``'0.5'`` is refused rather than parsed) and never
bools (``True`` is not the integer 1 here, except for ``verbose``, as Keras treats it).
"""
import math
import numbers
import os
import warnings

import numpy as np

__all__ = ["integer", "number", "boolean", "choice", "text", "path", "sequence_of", "shape", "batch_size",
           "verbose", "unsupported", "epochs"]


def _received(value):
    """How a received value is shown: its repr, and its type when the repr does not make it plain."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return shown if isinstance(value, (int, float, str, type(None))) else f"{shown} ({type(value).__name__})"


def integer(owner, name, value, minimum=None, maximum=None):
    """``value`` as an int; TypeError unless an int (not a bool, not a float or string), ValueError out of range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{owner}: {name} must be an int, got {_received(value)}")
    value = int(value)
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        raise ValueError(f"{owner}: {name} must be an int {_range_text(minimum, maximum)}, got {value}")
    return value


def number(owner, name, value, low=None, high=None, low_open=False, high_open=False):
    """``value`` as a finite float within [low, high] (an end is excluded when ``*_open``).

    TypeError unless a real number (not a bool or string); ValueError when NaN, infinite or out of range.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a number, got {_received(value)}")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or below or above:
        interval = _interval_text(low, high, low_open, high_open)
        raise ValueError(f"{owner}: {name} must be a finite number{interval}, got {value}")
    return value


def boolean(owner, name, value):
    """``value`` as a bool; TypeError for anything but True/False (a string 'no' is not False)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be True or False, got {_received(value)}")
    return bool(value)


def choice(owner, name, value, choices):
    """``value`` itself when it is one of ``choices``; ValueError listing them otherwise."""
    if isinstance(value, (str, int, type(None))) and any(value == c and type(value) is type(c) for c in choices):
        return value
    listed = ", ".join(repr(c) for c in choices)
    raise ValueError(f"{owner}: {name} must be one of {listed}, got {_received(value)}")


def text(owner, name, value, optional=False):
    """``value`` as a str (None allowed when ``optional``); TypeError otherwise."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{owner}: {name} must be a string, got {_received(value)}")
    return value


def path(owner, name, value):
    """A file path (str or os.PathLike) as a str; TypeError otherwise, ValueError when empty."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{owner}: {name} must be a file path (str or os.PathLike), got {_received(value)}")
    value = os.fspath(value)
    if not isinstance(value, str):
        value = os.fsdecode(value)
    if not value:
        raise ValueError(f"{owner}: {name} must not be empty")
    return value


def sequence_of(owner, name, value, kind, kind_name, example):
    """``value`` as a list of ``kind`` instances (None gives []); TypeError with an example otherwise.

    A single instance gets the hint that a list is wanted (``callbacks=[EarlyStopping()]``).
    """
    if value is None:
        return []
    if isinstance(value, kind):
        raise TypeError(f"{owner}: {name} must be a list of {kind_name}s, got one {type(value).__name__}; "
                        f"put it in a list: {example}")
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{owner}: {name} must be a list of {kind_name}s, got {_received(value)}")
    for position, item in enumerate(value):
        if not isinstance(item, kind):
            raise TypeError(f"{owner}: {name}[{position}] must be a {kind_name}, got {_received(item)}")
    return list(value)


def shape(owner, name, value, allow_none=True):
    """A shape as a tuple of positive ints (None allowed for unknown sizes); TypeError/ValueError otherwise."""
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = (value,)
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        raise TypeError(f"{owner}: {name} must be a tuple of ints, got {_received(value)}")
    dims = []
    for d in value:
        if d is None and allow_none:
            dims.append(None)
        elif isinstance(d, (bool, np.bool_)) or not isinstance(d, (numbers.Integral, np.integer)):
            raise TypeError(f"{owner}: {name} must be a tuple of ints, got {_received(tuple(value))}")
        elif d <= 0:
            raise ValueError(f"{owner}: {name} must hold positive sizes, got {tuple(value)}")
        else:
            dims.append(int(d))
    return tuple(dims)


def batch_size(method, value, name="batch_size"):
    """Keras's default of 32 for None, else a positive int."""
    return 32 if value is None else integer(method, name, value, minimum=1)


def verbose(method, value):
    """fit/evaluate/predict's verbose: 'auto' (1), 0, 1 or 2; True and False count as 1 and 0, as in Keras."""
    if isinstance(value, str) and value == "auto":
        return 1
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1, 2):
        return int(value)
    raise ValueError(f"{method}: verbose must be 'auto', 0, 1 or 2, got {value!r}")


def epochs(method, count, initial_epoch):
    """Non-negative ints; when there is nothing to train, Keras's empty History and a warning."""
    count = integer(method, "epochs", count, minimum=0)
    initial_epoch = integer(method, "initial_epoch", initial_epoch, minimum=0)
    if count <= initial_epoch:
        warnings.warn(f"{method}: epochs={count} with initial_epoch={initial_epoch} trains nothing (epochs counts "
                      "up to, not beyond, initial_epoch); the History is empty", UserWarning, stacklevel=3)
    return count, initial_epoch


def unsupported(method, **values):
    """ValueError naming the arguments nnengine does not support yet, when any of them is given (not None)."""
    given = [name for name, value in values.items() if value is not None]
    if given:
        raise ValueError(f"{method}: {', '.join(given)} {'is' if len(given) == 1 else 'are'} not supported by "
                         "nnengine yet")


def _range_text(minimum, maximum):
    if minimum is not None and maximum is not None:
        return f"in [{minimum}, {maximum}]"
    if minimum is not None:
        return f">= {minimum}"
    return f"<= {maximum}"


def _interval_text(low, high, low_open, high_open):
    if low is None and high is None:
        return ""
    if high is None:
        return f" {'>' if low_open else '>='} {low}"
    if low is None:
        return f" {'<' if high_open else '<='} {high}"
    return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
