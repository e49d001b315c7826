"""``einsum`` of one or two Tensors, as numpy writes it, from transposes, sums and one batched matmul.

For two operands, every letter of the equation is one of four kinds:

    batch       in both operands and in the output   ("b" in "bij,bjk->bik")
    contracted  in both operands, not in the output  ("j": summed over)
    free        in one operand and in the output     ("i" of the first, "k" of the second)
    summed      in one operand only, not the output  (summed away before anything else)

so each operand is summed over its summed letters, transposed to (batch, free, contracted) and (batch,
contracted, free), reshaped to three axes, multiplied by one batched matmul, reshaped back and transposed to the
output's order. One operand is summed and transposed. ``...`` stands for the axes no letter names (the same
number in every term that has it, broadcast as numpy does only when the sizes agree). Every step is a
differentiable op, so autograd derives einsum's gradient. A letter repeated within one term (a diagonal, a
trace) is refused.
"""
import math
import string

import numpy as np

from . import functional as F
from .tensor import Tensor

__all__ = ["einsum"]


def _terms(equation, operands):
    """([input terms], output term) with ``...`` replaced by letters the equation does not use."""
    if not isinstance(equation, str) or equation.count("->") > 1:
        raise ValueError(f"einsum: the equation must be a string 'terms->output', got {equation!r:.60}")
    equation = equation.replace(" ", "")
    inputs, _, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: the equation {equation!r} names {len(terms)} operands, got {len(operands)}")
    spare = iter(letter for letter in string.ascii_letters if letter not in equation)
    ellipsis_count = max((x.ndim - len(t.replace("...", "")) for t, x in zip(terms, operands) if "..." in t),
                         default=0)
    hidden = "".join(next(spare) for _ in range(max(ellipsis_count, 0)))
    terms = [t.replace("...", hidden[len(hidden) - (x.ndim - len(t.replace("...", ""))):] if "..." in t else "")
             for t, x in zip(terms, operands)]
    if "->" not in equation:                # numpy's implicit output: the letters named once, in order
        named = "".join(terms)
        output = hidden + "".join(sorted(letter for letter in set(named) if named.count(letter) == 1
                                         and letter not in hidden))
    else:
        output = output.replace("...", hidden)
    for term, x in zip(terms, operands):
        if not all(letter in string.ascii_letters for letter in term):
            raise ValueError(f"einsum: {equation!r} has a character that is not a letter")
        if len(term) != x.ndim:
            raise ValueError(f"einsum: term {term!r} of {equation!r} names {len(term)} axes, the operand has shape "
                             f"{tuple(x.shape)}")
        if len(set(term)) != len(term):
            raise ValueError(f"einsum: term {term!r} repeats a letter (a diagonal or trace), which is not supported")
    return terms, output


def _sizes(terms, operands):
    """{letter: its size}, the same in every term that names it."""
    sizes = {}
    for term, x in zip(terms, operands):
        for letter, size in zip(term, x.shape):
            if sizes.setdefault(letter, size) != size:
                raise ValueError(f"einsum: axis {letter!r} has size {sizes[letter]} in one operand and {size} in "
                                 "another")
    return sizes


def _arranged(x, term, order):
    """``x`` (axes named by ``term``) with its axes in ``order`` (a permutation of term's letters)."""
    permutation = [term.index(letter) for letter in order]
    return x if permutation == list(range(len(term))) else x.transpose(*permutation)


def _summed(x, term, keep):
    """``x`` summed over the letters of ``term`` not in ``keep``; (the Tensor, its remaining term)."""
    gone = tuple(axis for axis, letter in enumerate(term) if letter not in keep)
    if not gone:
        return x, term
    return x.sum(axis=gone), "".join(letter for letter in term if letter in keep)


def einsum(equation, *operands):
    """Keras's (and numpy's) ``einsum`` of one or two Tensors (see the module's docstring)."""
    operands = [x if isinstance(x, Tensor) else Tensor(np.asarray(x)) for x in operands]
    if len(operands) not in (1, 2):
        raise ValueError(f"einsum: takes one or two operands, got {len(operands)}")
    terms, output = _terms(equation, operands)
    sizes = _sizes(terms, operands)
    missing = [letter for letter in output if letter not in sizes]
    if missing or len(set(output)) != len(output):
        raise ValueError(f"einsum: the output {output!r} must name each axis of the operands at most once, got "
                         f"{missing or output!r}")
    if len(operands) == 1:
        x, term = _summed(operands[0], terms[0], output)
        return _arranged(x, term, output)
    (a, b), (ta, tb) = operands, terms
    a, ta = _summed(a, ta, output + tb)
    b, tb = _summed(b, tb, output + ta)
    batch = [letter for letter in output if letter in ta and letter in tb]
    contracted = [letter for letter in ta if letter in tb and letter not in output]
    free_a = [letter for letter in ta if letter not in tb]
    free_b = [letter for letter in tb if letter not in ta]

    def count(letters):
        return math.prod(sizes[letter] for letter in letters)
    left = _arranged(a, ta, batch + free_a + contracted).reshape(count(batch), count(free_a), count(contracted))
    right = _arranged(b, tb, batch + contracted + free_b).reshape(count(batch), count(contracted), count(free_b))
    product = F.matmul(left, right).reshape(*[sizes[letter] for letter in batch + free_a + free_b])
    return _arranged(product, "".join(batch + free_a + free_b), output)
