"""Model files under attack: hostile files, corrupted and truncated copies, killed saves, full disks, symlinks.

Every malformed file must raise ONE exception type, ``nnengine.ModelFileError`` (a ValueError),
naming the file and the place in it; a corrupted copy either loads exactly the saved weights or
raises it. Saves are atomic, write through symlinks and clean up after killed saves.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
pytest.importorskip("hypothesis")        # property tests: skipped where hypothesis is missing
from hypothesis import given, settings
from hypothesis import strategies as st
from keras_helpers import classification_data, small_model, strip_header

import nnengine as nn
from nnengine import h5io, safe_save

DATA = Path(__file__).parent / "data"


def saved_model(path):
    """A small trained model saved to ``path`` (with optimizer state); returns the model."""
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(*classification_data(32), epochs=1, verbose=0)
    model.save(path)
    return model


def edit(path, change):
    """Edit a saved file with h5py as a hostile author would: change it, drop the checksums nnengine wrote."""
    with h5py.File(path, "a") as f:
        change(f)
        if "nnengine_checksums" in f.attrs:
            del f.attrs["nnengine_checksums"]
        f.visititems(lambda name, node: node.attrs.__delitem__("nnengine_crc32")
                     if "nnengine_crc32" in node.attrs else None)
    strip_header(path)


def edit_config(path, change):
    """Edit the model_config JSON of a saved file (``change(config)`` returns the new value)."""
    def apply(f):
        f.attrs["model_config"] = json.dumps(change(json.loads(f.attrs["model_config"])))
    edit(path, apply)


def first_kernel_path(f):
    group = f["model_weights"]
    layer = group.attrs["layer_names"][0].decode()
    return f"model_weights/{layer}/" + group[layer].attrs["weight_names"][0].decode()


# ---------------------------------------------------------------------------------------------
# Files that reach outside themselves
# ---------------------------------------------------------------------------------------------
def test_external_links_are_refused(tmp_path):
    saved_model(tmp_path / "m.h5")
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as f:
        f.create_dataset("w", data=np.ones((6, 8), np.float32))

    def link_out(f):
        path = first_kernel_path(f)
        del f[path]
        f[path] = h5py.ExternalLink(str(secret), "/w")
    edit(tmp_path / "m.h5", link_out)
    with pytest.raises(nn.ModelFileError, match="is a ExternalLink to outside the file"):
        nn.load_model(tmp_path / "m.h5")


def test_external_storage_is_refused(tmp_path):
    saved_model(tmp_path / "m.h5")
    outside = tmp_path / "passwords.bin"
    outside.write_bytes(np.arange(48, dtype=np.float32).tobytes())

    def external(f):
        path = first_kernel_path(f)
        del f[path]
        f.create_dataset(path, shape=(6, 8), dtype="float32", external=[(str(outside), 0, 6 * 8 * 4)])
    edit(tmp_path / "m.h5", external)
    with pytest.raises(nn.ModelFileError, match="keeps its data in external files"):
        nn.load_model(tmp_path / "m.h5")


def test_virtual_datasets_are_refused(tmp_path):
    saved_model(tmp_path / "m.h5")
    source = tmp_path / "source.h5"
    with h5py.File(source, "w") as f:
        f.create_dataset("w", data=np.ones((6, 8), np.float32))

    def virtual(f):
        path = first_kernel_path(f)
        del f[path]
        layout = h5py.VirtualLayout(shape=(6, 8), dtype="float32")
        layout[:] = h5py.VirtualSource(str(source), "w", shape=(6, 8))
        f.create_virtual_dataset(path, layout)
    edit(tmp_path / "m.h5", virtual)
    with pytest.raises(nn.ModelFileError, match="is a virtual dataset"):
        nn.load_model(tmp_path / "m.h5")


def test_compressed_and_unwritten_datasets_are_refused(tmp_path):
    saved_model(tmp_path / "m.h5")

    def compress(f):
        path = first_kernel_path(f)
        values = f[path][()]
        del f[path]
        f.create_dataset(path, data=values, compression="gzip")
    edit(tmp_path / "m.h5", compress)
    with pytest.raises(nn.ModelFileError, match="is compressed or filtered"):
        nn.load_model(tmp_path / "m.h5")

    saved_model(tmp_path / "u.h5")

    def unwritten(f):
        path = first_kernel_path(f)
        del f[path]
        f.create_dataset(path, shape=(6, 8), dtype="float32")     # declared, never written: reads as zeros
    edit(tmp_path / "u.h5", unwritten)
    with pytest.raises(nn.ModelFileError, match="declares 192 bytes but stores 0 in the file"):
        nn.load_model(tmp_path / "u.h5")


@pytest.mark.parametrize("units", [5_000_000, 10 ** 12])
def test_a_small_file_cannot_drive_a_large_allocation(tmp_path, units):
    saved_model(tmp_path / "m.h5")

    def huge(config):
        config["config"]["layers"][1]["config"]["units"] = units
        return config

    edit_config(tmp_path / "m.h5", huge)
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(nn.ModelFileError, match=rf"stored shape \(6, 8\) does not match the model's \(6, {units}\)"):
            nn.load_model(tmp_path / "m.h5")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2 ** 20, f"loading allocated {peak / 2 ** 20:.0f} MiB before refusing the file"
    assert time.perf_counter() - start < 10


def test_a_file_that_hangs_the_hdf5_library_is_refused_without_hanging(monkeypatch):
    # tests/data/hdf5_hangs.h5: a saved model with one byte changed, found by fuzzing; reading its
    # 'nnengine_checksums' attribute sends libhdf5 into an endless loop. It predates the header.
    monkeypatch.setattr(h5io, "PROBE_SECONDS", 3)
    start = time.perf_counter()
    with pytest.raises(nn.ModelFileError, match="did not finish reading its structure within 3 s"):
        nn.load_model(DATA / "hdf5_hangs.h5")
    assert time.perf_counter() - start < 15


def test_a_forged_header_does_not_skip_the_probe_when_asked(tmp_path, monkeypatch):
    hanging = tmp_path / "forged.h5"
    body = (DATA / "hdf5_hangs.h5").read_bytes()         # HDF5 finds its superblock after a 512-byte user block
    import zlib
    hanging.write_bytes(safe_save._header(zlib.crc32(body), len(body)) + body)   # a valid header on a bad file
    assert h5io.verify_whole_file(hanging)
    monkeypatch.setattr(h5io, "PROBE_SECONDS", 3)
    monkeypatch.setattr(h5io, "PROBE_ALL_FILES", True)
    with pytest.raises(nn.ModelFileError, match="did not finish reading its structure within 3 s"):
        nn.load_model(hanging)


# ---------------------------------------------------------------------------------------------
# Malformed configs and missing parts: one exception type, naming the place
# ---------------------------------------------------------------------------------------------
def _set_layer(index, key, value):
    def change(config):
        config["config"]["layers"][index]["config"][key] = value
        return config
    return change


def _drop_layer_key(index, key):
    def change(config):
        del config["config"]["layers"][index]["config"][key]
        return config
    return change


CONFIG_EDITS = {
    "model_config is a list": (lambda c: [c], "expected a JSON object, found list"),
    "layers is a string": (lambda c: {**c, "config": {**c["config"], "layers": "dense"}}, "'layers' must be a list"),
    "a layer config is a list": (lambda c: {**c, "config": {**c["config"], "layers": [
        c["config"]["layers"][0], {"class_name": "Dense", "config": [1]}]}}, r"layers\[1\] must be a dict"),
    "Dense without units": (_drop_layer_key(1, "units"), r"layers\[1\] \(Dense\): its config lacks 'units'"),
    "negative batch_shape": (_set_layer(0, "batch_shape", [None, -6]), "must hold positive sizes"),
    "string batch_shape": (_set_layer(0, "batch_shape", "abc"), "must be a tuple"),
    "units as a string": (_set_layer(1, "units", "8"), "units must be an int, got '8'"),
    "unknown activation": (_set_layer(1, "activation", "relu7"), "Unknown activation 'relu7'"),
    "unknown class": (lambda c: {**c, "config": {**c["config"], "layers": [
        c["config"]["layers"][0], {"class_name": "Lambda", "config": {}}]}}, "cannot load layer class 'Lambda'"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_EDITS))
def test_malformed_configs_raise_the_one_file_error(tmp_path, case):
    saved_model(tmp_path / "m.h5")
    change, message = CONFIG_EDITS[case]
    edit_config(tmp_path / "m.h5", change)
    with pytest.raises(nn.ModelFileError, match=f"m.h5' is not a valid model file: at .*{message}"):
        nn.load_model(tmp_path / "m.h5")


def test_json_nested_too_deeply(tmp_path):
    saved_model(tmp_path / "m.h5")
    edit(tmp_path / "m.h5", lambda f: f.attrs.__setitem__("model_config", "[" * 100_000 + "]" * 100_000))
    with pytest.raises(nn.ModelFileError, match="at attribute model_config: the JSON is nested too deeply"):
        nn.load_model(tmp_path / "m.h5")


def test_missing_weights_and_groups(tmp_path):
    saved_model(tmp_path / "m.h5")
    edit(tmp_path / "m.h5", lambda f: f.__delitem__(first_kernel_path(f)))
    with pytest.raises(nn.ModelFileError, match=r"at model_weights/.*kernel: 'kernel' is missing"):
        nn.load_model(tmp_path / "m.h5")
    model = saved_model(tmp_path / "g.h5")
    edit(tmp_path / "g.h5", lambda f: f["model_weights"].__delitem__(model.layers[1].name))
    with pytest.raises(nn.ModelFileError, match=rf"'{model.layers[1].name}' is missing"):
        nn.load_model(tmp_path / "g.h5")


@pytest.mark.parametrize("iteration", [np.nan, -3.0, 2.5, np.array([1, 2])])
def test_bad_optimizer_step_counts(tmp_path, iteration):
    saved_model(tmp_path / "m.h5")

    def set_iteration(f):
        del f["optimizer_weights/adam/iteration"]
        f["optimizer_weights"].create_dataset("adam/iteration", data=iteration)
    edit(tmp_path / "m.h5", set_iteration)
    with pytest.raises(nn.ModelFileError, match="iteration: the step count must be one non-negative integer"):
        nn.load_model(tmp_path / "m.h5")


# ---------------------------------------------------------------------------------------------
# Checksums
# ---------------------------------------------------------------------------------------------
def test_corrupted_weights_are_detected_by_their_checksum(tmp_path):
    saved_model(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r") as f:
        offset = f[first_kernel_path(f)].id.get_offset()
    data = bytearray((tmp_path / "m.h5").read_bytes())
    data[offset + 5] ^= 0x10                           # one bit of the first kernel
    (tmp_path / "m.h5").write_bytes(bytes(data))
    with pytest.raises(nn.ModelFileError, match="at the whole file: the file's checksum does not match"):
        nn.load_model(tmp_path / "m.h5")
    strip_header(tmp_path / "m.h5")                    # without the whole-file header, the array's own checksum
    with pytest.raises(nn.ModelFileError, match="kernel: the checksum does not match: the weights are corrupted"):
        nn.load_model(tmp_path / "m.h5")


def test_a_file_nnengine_wrote_must_keep_its_array_checksums(tmp_path):
    saved_model(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        del f[first_kernel_path(f)].attrs["nnengine_crc32"]
    strip_header(tmp_path / "m.h5")
    with pytest.raises(nn.ModelFileError, match="the checksum nnengine writes beside every weight is missing"):
        nn.load_model(tmp_path / "m.h5")


def test_keras_files_without_checksums_still_load():
    model = nn.load_model(DATA / "keras3_sequential.h5")
    reference = np.load(DATA / "keras3_sequential.npz", allow_pickle=False)
    np.testing.assert_allclose(model.predict(reference["x"], verbose=0), reference["y"], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def saved_file(tmp_path_factory):
    """(the bytes of a saved model file, its weights), made once for the fuzz tests."""
    path = tmp_path_factory.mktemp("original") / "m.h5"
    model = saved_model(path)
    return path.read_bytes(), model.get_weights()


@settings(deadline=None)
@given(data=st.data())
def test_corrupted_copies_load_the_same_weights_or_raise_the_file_error(tmp_path_factory, saved_file, data):
    directory = tmp_path_factory.mktemp("fuzz")
    original, weights = saved_file
    kind = data.draw(st.sampled_from(["flip", "overwrite", "truncate", "flip-headerless"]))
    damaged = bytearray(original)
    if kind == "truncate":
        damaged = damaged[:data.draw(st.integers(0, len(original) - 1))]
    else:
        for _ in range(data.draw(st.integers(1, 3))):
            at = data.draw(st.integers(512 if kind == "flip-headerless" else 0, len(original) - 1))
            value = data.draw(st.integers(1, 255))
            damaged[at] = damaged[at] ^ value if kind != "overwrite" else value
        if kind == "flip-headerless":
            damaged[:512] = bytes(512)
    (directory / "c.h5").write_bytes(bytes(damaged))
    try:
        loaded = nn.load_model(directory / "c.h5")
    except nn.ModelFileError:
        return
    assert len(loaded.get_weights()) == len(weights)
    for before, after in zip(weights, loaded.get_weights()):
        assert np.array_equal(before, after)


@settings(deadline=None)
@given(edit_at=st.integers(0, 10_000), value=st.one_of(st.none(), st.booleans(), st.integers(-5, 10 ** 6),
                                                        st.floats(allow_nan=True), st.text(max_size=5),
                                                        st.lists(st.integers(-2, 3), max_size=3)))
def test_edited_configs_load_the_same_weights_or_raise_the_file_error(tmp_path_factory, saved_file, edit_at, value):
    directory = tmp_path_factory.mktemp("edit")
    original, weights = saved_file
    (directory / "m.h5").write_bytes(original)

    def replace_one_value(config):
        places = []

        def walk(node):
            items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
            for key, child in items:
                places.append((node, key))
                walk(child)
        walk(config)
        node, key = places[edit_at % len(places)]
        node[key] = value
        return config

    edit_config(directory / "m.h5", replace_one_value)
    try:
        loaded = nn.load_model(directory / "m.h5")
    except nn.ModelFileError:
        return
    for before, after in zip(weights, loaded.get_weights()):
        assert np.array_equal(before, after)


# ---------------------------------------------------------------------------------------------
# Saves: symlinks, stale temporary files, kills, full disks
# ---------------------------------------------------------------------------------------------
def test_saving_through_a_symlink_updates_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "model.h5"
    model = saved_model(target)
    link = tmp_path / "link.h5"
    link.symlink_to(target)
    model.fit(*classification_data(32), epochs=1, verbose=0)
    model.save(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    loaded = nn.load_model(target)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), loaded.get_weights()))
    assert sorted(os.listdir(tmp_path)) == ["link.h5", "real"]
    assert sorted(os.listdir(tmp_path / "real")) == ["model.h5"]


def test_a_save_removes_temporary_files_of_killed_saves_only(tmp_path):
    target = tmp_path / "model.h5"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    host = safe_save._HOST
    stale = tmp_path / f".model.h5{safe_save.TEMP_MARK}{host}.{dead_pid}.abcd1234"
    alive = tmp_path / f".model.h5{safe_save.TEMP_MARK}{host}.{os.getppid()}.abcd1234"   # a live process's save
    other_target = tmp_path / f".other.h5{safe_save.TEMP_MARK}{host}.{dead_pid}.abcd1234"
    for path in (stale, alive, other_target):
        path.write_bytes(b"partial")
    saved_model(target)
    assert not stale.exists()
    assert alive.exists() and other_target.exists()


KILLED_SAVER = textwrap.dedent("""
    import sys
    import numpy as np
    import nnengine as nn
    model = nn.Sequential([nn.layers.Dense(512, input_shape=(512,)), nn.layers.Dense(512)])
    versions = [[np.full(w.shape, float(v), np.float32) for w in model.get_weights()] for v in (1, 2)]
    print("ready", flush=True)
    while True:
        for weights in versions:
            model.set_weights(weights)
            model.save(sys.argv[1])
""")


def test_saves_killed_at_random_moments_leave_a_complete_file(tmp_path):
    target = tmp_path / "model.h5"
    rng = np.random.default_rng(0)
    for _ in range(6):
        saver = subprocess.Popen([sys.executable, "-c", KILLED_SAVER, str(target)], stdout=subprocess.PIPE, text=True)
        assert saver.stdout.readline().strip() == "ready"
        time.sleep(0.2 + rng.random() * 0.5)
        saver.send_signal(signal.SIGKILL)
        saver.wait()
        saver.stdout.close()
        if target.exists():
            values = {float(w.flat[0]) for w in nn.load_model(target).get_weights()}
            assert values in ({1.0}, {2.0}), "a killed save left a mixed or partial model"
    model = nn.Sequential([nn.layers.Dense(2, input_shape=(3,))])
    model.save(target)                                 # the next save cleans up after the killed ones
    assert os.listdir(tmp_path) == ["model.h5"]


FILE_SIZE_LIMITED = textwrap.dedent("""
    import resource, signal, sys
    import nnengine as nn
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)       # writes past the limit then fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    big = nn.Sequential([nn.layers.Dense(256, input_shape=(1024,))])
    try:
        big.save(sys.argv[1])
    except OSError as error:
        print("OSError:", error)
""")


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs POSIX file-size limits")
def test_a_save_that_hits_a_file_size_limit_raises_oserror_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.h5"
    small = saved_model(target)
    before = target.read_bytes()
    done = subprocess.run([sys.executable, "-c", FILE_SIZE_LIMITED, str(target)], capture_output=True, text=True,
                          timeout=120)
    assert f"OSError: [Errno 27] save: could not write '{target}'" in done.stdout, done.stdout + done.stderr
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.h5"]
    loaded = nn.load_model(target)
    assert all(np.array_equal(a, b) for a, b in zip(small.get_weights(), loaded.get_weights()))


def test_a_save_into_a_read_only_directory_names_the_path(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    try:
        with pytest.raises(PermissionError, match="cannot save to .*ro/m.h5'"):
            saved_model(tmp_path / "ro" / "m.h5")
    finally:
        os.chmod(tmp_path / "ro", 0o700)
