"""The base of every callback: ``Callback`` (Keras's hooks, each a no-op), ``CallbackList``, and the process flag.

callbacks.py holds the built-in callbacks; this module holds what they and the trainer share.
``set_secondary_process`` marks a non-zero rank of a distributed run, whose progress bars and files
are silent (nnengine.distributed.init sets it).
"""

__all__ = ["HOOKS", "Callback", "CallbackList", "set_secondary_process", "is_secondary_process", "check_verbose",
           "noop_hook"]

HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
         "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
         "on_predict_begin", "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end")


_PROCESS = {"secondary": False}


def set_secondary_process(secondary):
    """Mark this process as one that does not print progress or write files (a non-zero rank of a
    distributed run; nnengine.distributed.init sets it)."""
    _PROCESS["secondary"] = bool(secondary)


def check_verbose(owner, verbose):
    """0, 1 or 2 (or a bool), as the callbacks' verbose argument."""
    if isinstance(verbose, (bool, int)) and verbose in (0, 1, 2):
        return int(verbose)
    raise ValueError(f"{owner}: verbose must be 0, 1 or 2, got {verbose!r}")


class Callback:
    """Base class: every hook does nothing; ``model`` and ``params`` are set before training.

    ``needs_every_batch``: whether the batch-end hooks this callback acts on need each batch's logs as
    the batch ends (the default). A callback that only shows the latest values (the progress bar) says
    False: on a GPU, ``fit`` then reads the losses back from the device a few times a second, not after
    every step (``batch_loops.PendingBatches``).
    """

    needs_every_batch = True

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        """Attach the model being trained."""
        self.model = model

    def set_params(self, params):
        """Receive fit's parameters: {'verbose', 'epochs', 'steps'}."""
        self.params = params


def is_secondary_process():
    """True on a process that does not print progress or write files."""
    return _PROCESS["secondary"]


def noop_hook(self, *args, **kwargs):
    """Does nothing (override to act)."""


for _hook in HOOKS:
    setattr(Callback, _hook, noop_hook)


class CallbackList:
    """Calls a hook on each callback in order."""

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            callback.set_model(model)
            callback.set_params(params)
        # the hooks some callback acts on: a fit without batch callbacks then skips making each batch's logs
        self._idle = {hook for hook in HOOKS if not any(_acts_on(callback, hook) for callback in self.callbacks)}

    def wants(self, hook):
        """Whether some callback acts on ``hook`` (a caller may skip building its arguments otherwise)."""
        return hook not in self._idle

    def needs_every_batch(self, hook):
        """Whether some callback acting on batch-end ``hook`` needs its logs after every batch (``Callback``)."""
        return any(callback.needs_every_batch and _acts_on(callback, hook) for callback in self.callbacks)

    def call(self, hook, *args):
        """Run ``hook`` on every callback."""
        if hook in self._idle:
            return
        for callback in self.callbacks:
            getattr(callback, hook)(*args)


def _acts_on(callback, hook):
    """False when ``callback``'s ``hook`` is the base class's no-op (an instance attribute counts as acting)."""
    return getattr(getattr(callback, hook, None), "__func__", None) is not noop_hook
