"""BackupAndRestore: training that survives an interruption, as Keras 3's callback of that name.

While ``fit`` runs, the callback backs up the training state in ``backup_dir`` after every epoch (or every
``save_freq`` batches): the weights and the optimizer's state in ``latest.weights.h5`` (Keras 3's
``save_weights`` layout) and the epoch to start from in ``training_metadata.json`` (``{"epoch": e,
"batch": b}``). When ``fit`` starts again with the callback (after a crash, a kill, Ctrl-C, in a new process),
it loads both back and trains on from that epoch; a fit that ends normally removes the backup.

Each file is written atomically (safe_save.py), so an interruption leaves the previous complete file. The
weights file also holds the epoch itself (root attribute ``nnengine_backup_epoch``, which Keras ignores), and
a resume takes the epoch from there when it is present: the two files are written one after the other, and a
kill between them would otherwise pair the newer weights with the older epoch and train one epoch twice (as
Keras does). Loading goes through h5io's checks and a strict JSON reader; nothing in the directory is executed.

Where nnengine differs from Keras 3.15: at the end of training only the callback's own files are removed (and
the directory when that leaves it empty), where Keras removes the whole directory; the restored epoch applies to
the fit that restored it, where Keras keeps it for every later fit of the model; and a backup made within the
first epoch of a resumed fit records that epoch, where Keras records 0.
"""
import contextlib
import errno
import json
import os
import shutil
import warnings

import numpy as np

from . import arguments, weights_file
from .callback_base import Callback, is_secondary_process
from .h5io import ModelFileReader
from .safe_save import atomic_save

__all__ = ["BackupAndRestore"]

_WEIGHTS, _METADATA, _PREVIOUS = "latest.weights.h5", "training_metadata.json", ".bkp"
_METADATA_LIMIT = 1 << 16                     # bytes: Keras's metadata is a few dozen
_EPOCH = "nnengine_backup_epoch"              # the weights file's own copy of the epoch to resume at


class BackupAndRestore(Callback):
    """Back up the training state while ``fit`` runs and restore it when ``fit`` starts again (Keras 3).

    Args:
        backup_dir: the directory of the backup (created when first needed); use it for nothing else.
        save_freq: ``"epoch"`` (after each epoch), a positive integer (every that many batches; a resume
            repeats the interrupted epoch from its start, with the weights of the last backup), or ``False``
            (never back up; only restore).
        double_checkpoint: also keep the previous backup (``*.bkp``) and fall back to it when the latest
            cannot be read.
        delete_checkpoint: remove the backup when ``fit`` ends normally (not on an exception).
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True):
        super().__init__()
        owner = "BackupAndRestore"
        if backup_dir is None or backup_dir == "":
            raise ValueError(f"{owner}: backup_dir is empty; give the directory to keep the backup in")
        self.backup_dir = arguments.path(owner, "backup_dir", backup_dir)
        if not (save_freq == "epoch" or save_freq is False or (
                isinstance(save_freq, int) and not isinstance(save_freq, bool) and save_freq > 0)):
            raise ValueError(f"{owner}: save_freq must be 'epoch', a positive number of batches or False, "
                             f"got {save_freq!r}")
        self.save_freq = save_freq
        self.double_checkpoint = arguments.boolean(owner, "double_checkpoint", double_checkpoint)
        self.delete_checkpoint = arguments.boolean(owner, "delete_checkpoint", delete_checkpoint)
        self._weights_path = os.path.join(self.backup_dir, _WEIGHTS)
        self._metadata_path = os.path.join(self.backup_dir, _METADATA)
        self._epoch, self._last_batch, self._batches_since_backup = 0, 0, 0

    # -- restoring ----------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        """Load the latest backup, if any (the previous one when the latest cannot be read and
        ``double_checkpoint`` kept one), and tell ``fit`` the epoch to start from."""
        self._epoch, self._last_batch, self._batches_since_backup = 0, 0, 0
        if os.path.exists(self.backup_dir) and not os.path.isdir(self.backup_dir):
            raise NotADirectoryError(errno.ENOTDIR, f"BackupAndRestore: backup_dir {self.backup_dir!r} exists and is "
                                                    "not a directory")
        try:
            self._restore()
        except (OSError, ValueError) as error:
            previous = self._weights_path + _PREVIOUS
            if not (self.double_checkpoint and os.path.exists(previous)):
                raise
            warnings.warn(f"BackupAndRestore: the latest backup in {self.backup_dir!r} cannot be read ({error}); "
                          "restoring the previous one", UserWarning, stacklevel=2)
            self._put_back_previous()
            self._restore()

    def _restore(self):
        """Weights and optimizer state from the weights file, the starting epoch from the metadata file."""
        model = self.model
        if os.path.exists(self._weights_path):
            if not model.built:
                raise ValueError(f"BackupAndRestore: model {model.name!r} must be built to restore the backup in "
                                 f"{self.backup_dir!r}; give its first layer input_shape, or call it on a batch, "
                                 "before fit")
            if model.optimizer is not None:
                model.optimizer.build(model.trainable_weights)   # so that load_weights restores its state
            model.load_weights(self._weights_path)
            epoch = _epoch_in_weights(self._weights_path)
            if epoch is not None:
                model._initial_epoch = epoch
                return
        if os.path.exists(self._metadata_path):
            model._initial_epoch = _stored_epoch(self._metadata_path)

    def _put_back_previous(self):
        """Keras's fallback: the previous backup becomes the latest (so the next backup keeps a readable
        previous one); a previous weights file without its metadata restarts from epoch 0."""
        _copy(self._weights_path + _PREVIOUS, self._weights_path)
        if os.path.exists(self._metadata_path + _PREVIOUS):
            _copy(self._metadata_path + _PREVIOUS, self._metadata_path)
        elif os.path.exists(self._metadata_path):
            os.remove(self._metadata_path)

    # -- backing up ---------------------------------------------------------------------------------
    def on_epoch_begin(self, epoch, logs=None):
        """A backup within this epoch resumes at it (Keras 3.15 counts from 0 again after a resume, so a backup
        in the first resumed epoch would send a second resume back to epoch 0)."""
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        """Back up every ``save_freq`` batches (counted across epochs, as Keras counts them)."""
        if not isinstance(self.save_freq, int) or self.save_freq is False:
            return
        # batch numbers restart at 0 each epoch
        self._batches_since_backup += batch + 1 if batch <= self._last_batch else batch - self._last_batch
        self._last_batch = batch
        if self._batches_since_backup >= self.save_freq:
            self._batches_since_backup = 0
            self._back_up()

    def on_epoch_end(self, epoch, logs=None):
        """The next epoch is where a resume starts; back up now with ``save_freq='epoch'``."""
        self._epoch, self._last_batch = epoch + 1, 0
        if self.save_freq == "epoch":
            self._back_up()

    def _back_up(self):
        """Write the weights file, then the metadata file, each atomically (not on a secondary process)."""
        if is_secondary_process():
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint:
            for path in (self._weights_path, self._metadata_path):
                if os.path.exists(path):
                    _copy(path, path + _PREVIOUS)
        weights_file.save_weights(self.model, self._weights_path, attributes={_EPOCH: self._epoch})
        text = json.dumps({"epoch": self._epoch, "batch": self._last_batch}).encode("utf8")
        atomic_save("BackupAndRestore", self._metadata_path, True, lambda f: f.write(text), hdf5=False)

    def on_train_end(self, logs=None):
        """Remove the backup after a fit that ended normally (with ``delete_checkpoint``)."""
        if not self.delete_checkpoint or is_secondary_process():
            return
        for path in (self._weights_path, self._metadata_path):
            for name in (path, path + _PREVIOUS):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(name)
        with contextlib.suppress(OSError):        # left in place when it holds anything else
            os.rmdir(self.backup_dir)


def _stored_epoch(path):
    """The epoch a metadata file says training resumes at: one non-negative integer, else a ValueError."""
    with open(path, "rb") as f:
        text = f.read(_METADATA_LIMIT + 1)
    try:
        if len(text) > _METADATA_LIMIT:
            raise ValueError(f"longer than {_METADATA_LIMIT} bytes")
        metadata = json.loads(text.decode("utf8"))
        if not isinstance(metadata, dict) or "epoch" not in metadata:
            raise ValueError("it is not an object with an 'epoch' entry")
        epoch = metadata["epoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise ValueError(f"its epoch must be a non-negative integer, got {epoch!r}")
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"BackupAndRestore: cannot read the training metadata {path!r}: {error}") from None
    return epoch


def _epoch_in_weights(path):
    """The epoch an nnengine backup's weights file records (None in a Keras-written one), checked."""
    with ModelFileReader.open(path, "BackupAndRestore") as reader:
        if _EPOCH not in reader.file.attrs:
            return None
        stored = np.asarray(reader.file.attrs[_EPOCH])
        if stored.shape != () or stored.dtype.kind not in "iu" or int(stored) < 0:
            raise reader.error(f"attribute {_EPOCH}", f"the epoch must be a non-negative integer, got {stored!r}")
        return int(stored)


def _copy(source, target):
    """Copy a file atomically (the target is the old or the new complete file, never a mix)."""
    with open(source, "rb") as f:
        atomic_save("BackupAndRestore", target, True, lambda out: shutil.copyfileobj(f, out), hdf5=False)
