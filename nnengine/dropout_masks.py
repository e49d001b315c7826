"""Dropout masks drawn on the host, fed to a compiled training step as inputs.

Every dropout in nnengine (``Dropout``, the recurrent layers' ``dropout`` and ``recurrent_dropout``,
MultiHeadAttention's, SpatialDropout's) multiplies by an inverted-dropout mask: keep / (1 - rate), keep ~
Bernoulli(1 - rate), drawn on the host from the layer's generator (its ``seed``) or nnengine's
(``set_random_seed``); GaussianNoise and GaussianDropout draw normal noise the same way, and the image
augmentation layers their per-image transforms (as sampling tables, ``image_augmentation.py``). A
captured plan replays the primitive calls of its first step, so a mask uploaded inside the step would be
replayed forever; before this module, a model with dropout trained eagerly.

A ``MaskFeed`` moves the draws out of the step. It learns, on the first training step of a plan key, the
masks that step draws (in order: the generator, shape, law and dtype of each). Before every later step
of that key it draws the same masks, from the same generators in the same order, and uploads them; the
step's layers take them (``dropout_mask``) instead of drawing, and the compiled step receives their
arrays as inputs, as it receives the batch. So a compiled step and an eager one use the very same random
numbers: the results are bitwise equal, and ``set_random_seed`` repeats a run either way.
"""
import contextlib
import threading

from .tensor import Tensor
from .utils import global_rng

__all__ = ["MaskFeed", "dropout_mask", "gaussian_noise", "host_noise", "feeding"]

_CURRENT = threading.local()


def dropout_mask(rng, shape, rate, dtype, device):
    """The inverted-dropout mask keep / (1 - rate) of ``shape`` as a Tensor of ``dtype`` on ``device``, keep ~
    Bernoulli(1 - rate) drawn from ``rng`` (a layer's own generator; None: nnengine's, ``global_rng()``, looked
    up at each draw so that ``set_random_seed`` takes effect); inside a step that a MaskFeed feeds, the feed's
    next mask."""
    return host_noise(rng, shape, ("bernoulli", float(rate)), dtype, device)


def gaussian_noise(rng, shape, mean, stddev, dtype, device):
    """Normal noise N(mean, stddev^2) of ``shape`` as a Tensor of ``dtype`` on ``device``, drawn as
    ``dropout_mask`` draws (GaussianNoise, GaussianDropout)."""
    return host_noise(rng, shape, ("normal", float(mean), float(stddev)), dtype, device)


def host_noise(rng, shape, law, dtype, device):
    """Random numbers of ``shape`` from ``law`` (see ``draw``) as a Tensor: drawn now, or the feed's next ones."""
    feed = getattr(_CURRENT, "feed", None)
    if feed is not None:
        return feed.take(rng, tuple(shape), law, dtype, device)
    return Tensor(draw(rng, shape, law), dtype=dtype, device=device)


def draw(rng, shape, law):
    """Host random numbers (float64; the upload casts) from ``rng`` (None: nnengine's generator): for the law
    ("bernoulli", rate), keep / (1 - rate) with keep = rng.random(shape) >= rate; for ("normal", mean, stddev),
    rng.normal(mean, stddev, shape); for ("uniform", low, high), rng.uniform(low, high, shape); for ("sample",
    function, *arguments), ``function(rng, shape, *arguments)``: an array of ``shape`` that a module-level
    function computes from its draws (the image augmentation layers' sampling tables)."""
    rng = rng or global_rng()
    kind = law[0]
    if kind == "bernoulli":
        return (rng.random(shape) >= law[1]) / (1.0 - law[1])
    if kind == "normal":
        return rng.normal(law[1], law[2], shape)
    if kind == "uniform":
        return rng.uniform(law[1], law[2], shape)
    return law[1](rng, shape, *law[2:])


@contextlib.contextmanager
def feeding(feed):
    """The masks of this thread's step come from ``feed`` (None: each layer draws its own)."""
    previous = getattr(_CURRENT, "feed", None)
    _CURRENT.feed = feed
    try:
        yield
    finally:
        _CURRENT.feed = previous


class MaskFeed:
    """The masks of one kind of training step (a plan key): learnt on its first step, drawn before each later one.

    Attributes:
        spec: [(generator, shape, law, dtype, device)] of the masks a step draws, in order; None until learnt.
        unsteady: a step asked for other masks than the spec (control flow that changes them): the feed stops
            drawing ahead, and the step is not compiled (``blocker``).
    """

    def __init__(self):
        self.spec = None
        self.unsteady = False
        self._learning = []
        self._ready = []

    @property
    def learnt(self):
        """Whether the masks of a step are known, so that they can be drawn before it."""
        return self.spec is not None and not self.unsteady

    def prepare(self):
        """Draw and upload this step's masks (the spec's, in order); return their device arrays, the step's inputs."""
        self._ready = [Tensor(draw(rng, shape, law), dtype=dtype, device=device)
                       for rng, shape, law, dtype, device in self.spec]
        return [mask._data for mask in self._ready]

    def take(self, rng, shape, law, dtype, device):
        """The next mask of the step: drawn now while learning, else the one ``prepare`` drew for this place."""
        wanted = (rng, shape, law, dtype, device)
        if self.spec is None:
            self._learning.append(wanted)
        elif self._ready and self._matches(self.spec[len(self.spec) - len(self._ready)], wanted):
            return self._ready.pop(0)
        else:
            self.unsteady = True          # another mask than learnt: draw it here, and compile no more
        return Tensor(draw(rng, shape, law), dtype=dtype, device=device)

    @staticmethod
    def _matches(entry, wanted):
        return entry[0] is wanted[0] and entry[1:] == wanted[1:]

    def finish(self):
        """End a step: the first one's masks become the spec; the masks ``prepare`` drew are let go (a replayed
        plan read them as inputs, an eager step took them)."""
        if self.spec is None:
            self.spec, self._learning = self._learning, []
        self._ready = []

    def blocker(self):
        """Why steps of this key are not compiled, or None."""
        if self.unsteady:
            return "the dropout masks of a training step change from step to step in number or shape"
        return None
