"""BackupAndRestore: an interrupted fit resumes where its last backup left it, as Keras 3's callback does."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py

import numpy as np
import pytest

import nnengine as nn

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"


class Interrupt(nn.callbacks.Callback):
    """Raises at the start of epoch ``epoch`` (or after batch ``batch`` of it), as a crash or a kill would."""

    def __init__(self, epoch, batch=None):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch
        if epoch == self.epoch and self.batch is None:
            raise RuntimeError("interrupted")

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise RuntimeError("interrupted")


class FirstWeights(nn.callbacks.Callback):
    """Records the weights (and the optimizer's step count) fit starts from, after the callbacks before it."""

    def on_train_begin(self, logs=None):
        self.weights = self.model.get_weights()
        self.iterations = self.model.optimizer.iterations


def regression_data(count=40):
    rng = np.random.default_rng(5)
    return rng.standard_normal((count, 5)).astype("float32"), rng.standard_normal((count, 2)).astype("float32")


def regression_model(seed=0, optimizer="adam"):
    """Dense(4, relu) -> Dense(2), built, compiled with ``optimizer`` and mse, seeded."""
    nn.utils.set_random_seed(seed)
    model = nn.Sequential([nn.layers.Dense(4, activation="relu", input_shape=(5,)), nn.layers.Dense(2)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def fit(model, callbacks, epochs=6, **options):
    x, y = regression_data()
    return model.fit(x, y, epochs=epochs, batch_size=8, shuffle=False, verbose=0, callbacks=callbacks, **options)


def interrupted(folder, model, interrupt, **backup_options):
    """Run ``fit`` with a backup in ``folder`` until ``interrupt`` stops it."""
    with pytest.raises(RuntimeError, match="interrupted"):
        fit(model, [nn.callbacks.BackupAndRestore(folder, **backup_options), interrupt])


@pytest.mark.parametrize("fresh_model", [False, True])
def test_an_interrupted_fit_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, fresh_model):
    folder = tmp_path / "backup"
    expected = regression_model()
    fit(expected, [])
    model = regression_model()
    interrupted(folder, model, Interrupt(epoch=4))
    assert json.loads((folder / "training_metadata.json").read_text()) == {"epoch": 4, "batch": 0}
    if fresh_model:                               # a new process: other initial weights, an unbuilt optimizer
        model = regression_model(seed=7)
    history = fit(model, [nn.callbacks.BackupAndRestore(folder)])
    assert len(history.history["loss"]) == 2 and history.epoch == [4, 5]
    for got, want in zip(model.get_weights(), expected.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert model.optimizer.iterations == expected.optimizer.iterations == 30
    assert not folder.exists()                    # a fit that ends normally removes its backup
    assert len(fit(model, [], epochs=2).history["loss"]) == 2    # the restored epoch was for that fit only


def test_the_epoch_in_the_weights_file_wins_over_older_metadata(tmp_path):
    """A kill between the two files' writes leaves the new weights beside the old metadata."""
    folder = tmp_path / "backup"
    expected = regression_model()
    fit(expected, [])
    interrupted(folder, regression_model(), Interrupt(epoch=4))
    (folder / "training_metadata.json").write_text('{"epoch": 3, "batch": 0}')     # the older one
    model = regression_model(seed=7)
    assert fit(model, [nn.callbacks.BackupAndRestore(folder)]).epoch == [4, 5]
    for got, want in zip(model.get_weights(), expected.get_weights()):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("value", [-1, 2.0, "3", [1, 2]])
def test_a_hostile_epoch_in_the_weights_file_is_refused(tmp_path, value):
    folder = tmp_path / "backup"
    interrupted(folder, regression_model(), Interrupt(epoch=2), delete_checkpoint=False)
    with h5py.File(folder / "latest.weights.h5", "r+") as f:
        f.attrs["nnengine_backup_epoch"] = value
    with open(folder / "latest.weights.h5", "r+b") as f:
        f.write(bytes(512))                       # edited by hand: no whole-file checksum
    with pytest.raises(nn.saving.ModelFileError, match="nnengine_backup_epoch"):
        fit(regression_model(), [nn.callbacks.BackupAndRestore(folder)])


KILLED_TRAINER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[3])
    import numpy as np
    import nnengine as nn
    from test_backup_and_restore import regression_data, regression_model

    class Slow(nn.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.004)

    model = regression_model()
    print("ready", flush=True)
    x, y = regression_data()
    model.fit(x, y, epochs=40, batch_size=8, shuffle=False, verbose=0,
              callbacks=[nn.callbacks.BackupAndRestore(sys.argv[1]), Slow()])
    np.savez(sys.argv[2], *model.get_weights())
""")


def backed_up_epoch(folder):
    """The epoch the backup in ``folder`` resumes at, or -1 while there is none (each file is replaced whole)."""
    path = folder / "training_metadata.json"
    return json.loads(path.read_text())["epoch"] if path.exists() else -1


def test_training_killed_at_random_moments_resumes_to_the_uninterrupted_weights(tmp_path):
    """Four trainer processes, each SIGKILLed at a random moment after it has backed up once more (a process on
    an empty numba cache compiles first, so a fixed delay could land before any backup); then one runs to the end."""
    folder, result = tmp_path / "backup", tmp_path / "weights.npz"
    command = [sys.executable, "-c", KILLED_TRAINER, str(folder), str(result), str(TESTS)]
    rng, resumed_epochs = np.random.default_rng(0), []
    for _ in range(4):
        seen = backed_up_epoch(folder)
        trainer = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert trainer.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 120
        while backed_up_epoch(folder) <= seen and trainer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.random() * 0.3)            # somewhere in the next epochs: during a step, a save, between
        trainer.send_signal(signal.SIGKILL)
        trainer.wait()
        trainer.stdout.close()
        resumed_epochs.append(backed_up_epoch(folder))
    assert resumed_epochs == sorted(resumed_epochs) and resumed_epochs[0] > 0, resumed_epochs
    subprocess.run(command, check=True, capture_output=True)
    expected = regression_model()
    fit(expected, [], epochs=40)
    with np.load(result, allow_pickle=False) as got:
        for index, want in enumerate(expected.get_weights()):
            np.testing.assert_array_equal(got[f"arr_{index}"], want)
    assert not folder.exists()


def test_a_backup_every_few_batches_repeats_the_interrupted_epoch_from_the_last_backup(tmp_path):
    folder = tmp_path / "backup"
    model = regression_model()
    interrupted(folder, model, Interrupt(epoch=2, batch=3), save_freq=3, delete_checkpoint=False)
    # 5 batches an epoch, a backup every 3 (the 3rd, 6th, 9th, 12th batch): the last, after batch 1 of epoch 2
    assert json.loads((folder / "training_metadata.json").read_text()) == {"epoch": 2, "batch": 1}
    resumed, probe = regression_model(seed=3), FirstWeights()
    history = fit(resumed, [nn.callbacks.BackupAndRestore(folder, save_freq=3), probe])
    assert history.epoch == [2, 3, 4, 5] and probe.iterations == 12
    assert (folder / "latest.weights.h5").exists() is False


def test_a_backup_in_the_first_resumed_epoch_records_that_epoch(tmp_path):
    folder = tmp_path / "backup"
    interrupted(folder, regression_model(), Interrupt(epoch=2, batch=3), save_freq=3)
    interrupted(folder, regression_model(seed=1), Interrupt(epoch=2, batch=4), save_freq=3)
    # the second run resumed at epoch 2 and backed up after its batches 2 (and 4 is the interrupt's)
    assert json.loads((folder / "training_metadata.json").read_text())["epoch"] == 2
    history = fit(regression_model(seed=2), [nn.callbacks.BackupAndRestore(folder, save_freq=3)])
    assert history.epoch == [2, 3, 4, 5]


def test_keras_3s_backup_directory_resumes_as_keras_resumed_it(tmp_path):
    """tests/data/keras3_backup/ is what Keras 3.15's callback left when a fit was interrupted at the start of
    epoch 3; Keras then resumed it to keras3_backup.npz's losses and weights (make_keras_files.py backup)."""
    record = np.load(DATA / "keras3_backup.npz", allow_pickle=False)
    folder = tmp_path / "backup"
    shutil.copytree(DATA / "keras3_backup", folder)
    nn.utils.set_random_seed(1)
    model = nn.Sequential([nn.Input((5,)), nn.layers.Dense(4, activation="relu"), nn.layers.Dense(2)])
    model.compile(optimizer=nn.optimizers.Adam(0.01), loss="mse")
    probe = FirstWeights()
    history = model.fit(record["x"], record["y"], epochs=5, batch_size=8, shuffle=False, verbose=0,
                        callbacks=[nn.callbacks.BackupAndRestore(folder), probe])
    for index, weight in enumerate(probe.weights):
        np.testing.assert_array_equal(weight, record[f"backup_{index}"])
    assert probe.iterations == 15 and history.epoch == [3, 4]
    np.testing.assert_allclose(history.history["loss"], record["losses"], rtol=1e-5)
    for index, weight in enumerate(model.get_weights()):
        np.testing.assert_allclose(weight, record[f"resumed_{index}"], rtol=1e-5, atol=1e-6)


def test_a_lowered_learning_rate_resumes_lowered(tmp_path):
    folder = tmp_path / "backup"
    model = regression_model()
    lower = nn.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: setattr(
        model.optimizer, "learning_rate", 0.5 ** (epoch + 11)))
    with pytest.raises(RuntimeError):
        fit(model, [lower, nn.callbacks.BackupAndRestore(folder), Interrupt(epoch=2)])
    resumed, probe = regression_model(seed=2), FirstWeights()
    fit(resumed, [nn.callbacks.BackupAndRestore(folder), probe], epochs=2)
    assert resumed.optimizer.learning_rate == 0.5 ** 12


def test_double_checkpoint_falls_back_to_the_previous_backup(tmp_path):
    folder = tmp_path / "backup"
    model = regression_model()
    interrupted(folder, model, Interrupt(epoch=3), double_checkpoint=True)
    assert sorted(os.listdir(folder)) == ["latest.weights.h5", "latest.weights.h5.bkp", "training_metadata.json",
                                          "training_metadata.json.bkp"]
    (folder / "latest.weights.h5").write_bytes(b"not an hdf5 file")   # the latest backup is damaged
    resumed, probe = regression_model(seed=4), FirstWeights()
    with pytest.warns(UserWarning, match="restoring the previous one"):
        history = fit(resumed, [nn.callbacks.BackupAndRestore(folder, double_checkpoint=True), probe])
    assert history.epoch == [2, 3, 4, 5] and probe.iterations == 10
    assert not folder.exists()


def test_a_damaged_backup_without_a_previous_one_is_an_error_naming_it(tmp_path):
    folder = tmp_path / "backup"
    interrupted(folder, regression_model(), Interrupt(epoch=1), delete_checkpoint=False)
    (folder / "latest.weights.h5").write_bytes(b"not an hdf5 file")
    model = regression_model(seed=4)
    before = model.get_weights()
    with pytest.raises(ValueError, match="latest.weights.h5"):
        fit(model, [nn.callbacks.BackupAndRestore(folder)])
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("text, problem", [
    ("{", "Expecting"), ("[3]", "'epoch' entry"), ('{"batch": 0}', "'epoch' entry"),
    ('{"epoch": -1}', "non-negative integer"), ('{"epoch": 2.5}', "non-negative integer"),
    ('{"epoch": true}', "non-negative integer"), ('{"epoch": "3"}', "non-negative integer"),
    ("\udcff", "utf-8"), (" " * 70000, "longer than")])
def test_hostile_training_metadata_is_refused_by_name(tmp_path, text, problem):
    folder = tmp_path / "backup"
    folder.mkdir()
    (folder / "training_metadata.json").write_bytes(text.encode("utf8", "surrogateescape"))
    with pytest.raises(ValueError, match=f"training_metadata.json.*{problem}"):
        fit(regression_model(), [nn.callbacks.BackupAndRestore(folder)])


def test_only_the_callbacks_own_files_are_removed(tmp_path):
    folder = tmp_path / "backup"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    fit(regression_model(), [nn.callbacks.BackupAndRestore(folder)], epochs=2)
    assert os.listdir(folder) == ["notes.txt"]
    fit(regression_model(), [nn.callbacks.BackupAndRestore(folder, delete_checkpoint=False)], epochs=2)
    assert sorted(os.listdir(folder)) == ["latest.weights.h5", "notes.txt", "training_metadata.json"]


def test_a_backup_dir_that_is_a_file_is_refused_before_training(tmp_path):
    (tmp_path / "backup").write_text("not a directory")
    model = regression_model()
    before = model.get_weights()
    with pytest.raises(NotADirectoryError, match="backup_dir .* is not a directory"):
        fit(model, [nn.callbacks.BackupAndRestore(tmp_path / "backup")])
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


def test_save_freq_false_only_restores(tmp_path):
    folder = tmp_path / "backup"
    fit(regression_model(), [nn.callbacks.BackupAndRestore(folder, save_freq=False)], epochs=2)
    assert not folder.exists()


def test_an_unbuilt_model_with_a_backup_to_restore_is_an_error_saying_so(tmp_path):
    folder = tmp_path / "backup"
    interrupted(folder, regression_model(), Interrupt(epoch=1))
    model = nn.Sequential([nn.layers.Dense(4), nn.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    x, y = regression_data()
    batches = ((x[i:i + 8], y[i:i + 8]) for i in range(0, 40, 8))
    with pytest.raises(ValueError, match="must be built to restore"):
        model.fit(batches, epochs=2, verbose=0, callbacks=[nn.callbacks.BackupAndRestore(folder)])


@pytest.mark.parametrize("arguments, problem", [
    (dict(backup_dir=""), "backup_dir is empty"), (dict(backup_dir=None), "backup_dir is empty"),
    (dict(backup_dir="b", save_freq=0), "save_freq"), (dict(backup_dir="b", save_freq="batch"), "save_freq"),
    (dict(backup_dir="b", save_freq=True), "save_freq"), (dict(backup_dir="b", double_checkpoint="yes"),
                                                          "double_checkpoint")])
def test_bad_arguments_are_refused_by_name(arguments, problem):
    with pytest.raises((ValueError, TypeError), match=problem):
        nn.callbacks.BackupAndRestore(**arguments)
