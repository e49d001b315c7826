"""Reading model files carefully: a file comes from anywhere, so it is checked before it is used.

Its writing half is safe_save.py (atomic saves and the checksums this module verifies).

* The whole file's checksum (in HDF5's 512-byte user block, written by safe_save) is verified
  BEFORE the HDF5 library parses anything: the library can hang or crash on corrupted metadata (a
  fuzz run here found a flipped byte that sends its attribute reader into an endless loop:
  tests/data/hdf5_hangs.h5).
* A file without that header (written by Keras, or by hand) is first opened by a child process
  that reads every object and attribute the loader would; if the child hangs (``PROBE_SECONDS``) or
  dies, the file is refused and this process never touches it.
* Only the file itself is read: external links, external storage, virtual datasets and
  user-defined links are refused, and so are compressed or filtered datasets (neither Keras nor
  nnengine writes them, and a filter can load a plugin library or expand a few bytes into gigabytes).
* A dataset must store every byte it declares: an unwritten dataset would read as zeros and let a
  tiny file declare huge arrays. Callers give the shape they expect and it is compared before any
  data is read, so a file cannot make the loader allocate more than its own size plus the model.
* The checksums of weight arrays and JSON attributes are verified where present (Keras files have
  none and still load; a file that nnengine wrote must have them all).
* Every problem is a ``ModelFileError`` (a ValueError) naming the file, the place in it and what is
  wrong; errors of h5py, json and the config code are wrapped in it, never shown raw.
"""
import contextlib
import errno
import json
import os
import subprocess
import sys
import warnings
import zlib

import h5py
import numpy as np

from . import arguments
from .safe_save import CHECKSUM_ATTRIBUTE, CONFIG_CHECKSUMS, HEADER_MAGIC, HEADER_SIZE, body_checksum, checksum

__all__ = ["ModelFileError", "ModelFileReader", "verify_whole_file", "probe_in_child", "PROBE_SECONDS",
           "PROBE_ALL_FILES"]

#: how long the child process may take to read a foreign file's structure before the file is refused
PROBE_SECONDS = 20
#: probe every file in a child process, also those whose nnengine checksum header verifies. The header
#: guards against accidents, not against an author who forges it, so files from untrusted sources can be
#: probed always (``NNENGINE_PROBE_ALL_FILES=1``), at about half a second per load.
PROBE_ALL_FILES = os.environ.get("NNENGINE_PROBE_ALL_FILES", "") not in ("", "0")


class ModelFileError(ValueError):
    """A model or weights file that nnengine refuses to load: malformed, corrupted, or reaching outside itself.

    Attributes:
        path: the file.
        where: the place in it (an HDF5 path, or an attribute and a position in its JSON).
        problem: what is wrong there.
    """

    def __init__(self, caller, path, where, problem):
        super().__init__(f"{caller}: {path!r} is not a valid model file: at {where}: {problem}")
        self.path, self.where, self.problem = path, where, problem


# ---------------------------------------------------------------------------------------------
# The whole file, before the HDF5 library sees it
# ---------------------------------------------------------------------------------------------
def verify_whole_file(path):
    """True when ``path`` carries nnengine's header and its body matches it; False when it has no header.

    Raises:
        ValueError: the header is there but the body does not match it (or the header is garbled).
    """
    with open(path, "rb") as f:
        head = f.read(HEADER_SIZE)
        if not head.startswith(HEADER_MAGIC):
            return False
        fields = head[len(HEADER_MAGIC):].split(b"\n", 1)[0].split()
        if len(fields) != 4 or fields[0] != b"crc32" or fields[2] != b"length" or not fields[3].isdigit():
            raise ValueError("the checksum header is garbled")
        try:
            crc, length = int(fields[1], 16), int(fields[3])
        except ValueError:
            raise ValueError("the checksum header is garbled") from None
        actual_crc, actual_length = body_checksum(f)
    if actual_length != length:
        raise ValueError(f"the file holds {actual_length + HEADER_SIZE} bytes, its header says "
                         f"{length + HEADER_SIZE}: it was truncated or extended")
    if actual_crc != crc:
        raise ValueError("the file's checksum does not match: it is corrupted")
    return True


_PROBE = """
import sys, h5py
def visit(group, depth):
    for key in group.attrs:
        group.attrs[key]
    if depth > 64 or not isinstance(group, h5py.Group):
        return
    for name in group:
        link = group.get(name, getlink=True)
        if isinstance(link, h5py.HardLink):
            child = group[name]
            if isinstance(child, h5py.Dataset):
                child.shape, child.dtype, child.external, child.is_virtual
                child.id.get_storage_size(), child.id.get_create_plist().get_nfilters()
                for key in child.attrs:
                    child.attrs[key]
            else:
                visit(child, depth + 1)
with h5py.File(sys.argv[1], "r") as f:
    visit(f, 0)
print("ok")
"""


def probe_in_child(path):
    """Read the structure of the file at ``path`` in a child process; the problem as text, or None when fine."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, path], capture_output=True, text=True,
                              timeout=PROBE_SECONDS, env=environment)
    except subprocess.TimeoutExpired:
        return f"the HDF5 library did not finish reading its structure within {PROBE_SECONDS} s (corrupted metadata)"
    except OSError as error:              # no Python to start here (an embedded interpreter): read it ourselves
        warnings.warn(f"nnengine could not start a child process to check {path!r} first ({error}); reading it "
                      "in this process", RuntimeWarning, stacklevel=4)
        return None
    if "ModuleNotFoundError" in done.stderr:
        warnings.warn(f"nnengine's child process could not import h5py to check {path!r} first; reading it in "
                      "this process", RuntimeWarning, stacklevel=4)
        return None
    if done.returncode != 0 or "ok" not in done.stdout:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return f"the HDF5 library cannot read its structure ({last[:200]})"
    return None


# ---------------------------------------------------------------------------------------------
# The reader
# ---------------------------------------------------------------------------------------------
class ModelFileReader:
    """An open model file, read only through checks (see the module docstring).

    Use ``with ModelFileReader.open(path, caller) as reader:``. ``where`` tracks the place being
    read, so that an unexpected error is reported there.
    """

    def __init__(self, h5file, path, caller):
        self.file, self.path, self.caller = h5file, path, caller
        self.where = "/"
        self.checksums = None         # name -> CRC-32 of the JSON attributes, when nnengine wrote them

    @classmethod
    @contextlib.contextmanager
    def open(cls, path, caller):
        """Open ``path`` for checked reading; any error inside the block that is not ours becomes a ModelFileError."""
        path = arguments.path(caller, "filepath", path)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, f"{caller}: no such file {path!r}")
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, f"{caller}: {path!r} is a directory; nnengine reads .h5 files")
        reader = cls(None, path, caller)
        try:
            verified = verify_whole_file(path)
        except ValueError as error:
            raise reader.error("the whole file", str(error)) from None
        if not h5py.is_hdf5(path):
            raise reader.error("the start of the file", "not an HDF5 file (nnengine reads Keras .h5 files)")
        problem = None if verified and not PROBE_ALL_FILES else probe_in_child(path)
        if problem is not None:
            raise reader.error("the file's structure", problem)
        try:
            reader.file = h5py.File(path, "r")
        except Exception as error:
            raise reader.error("the start of the file", f"the HDF5 file is truncated or corrupted ({error})") \
                from None
        try:
            with reader.file:
                reader.checksums = reader._config_checksums()
                yield reader
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError, OSError,
                RecursionError, UnicodeDecodeError, OverflowError) as error:
            raise reader.error(reader.where, f"{type(error).__name__}: {error}") from None

    def error(self, where, problem):
        """The ModelFileError for ``problem`` at ``where`` in this file."""
        return ModelFileError(self.caller, self.path, where, problem)

    # -- walking the file --------------------------------------------------------------------
    def has(self, where):
        """True when ``where`` names an object inside the file (links checked on the way)."""
        return self._resolve(where, missing_ok=True) is not None

    def group(self, where):
        """The group at ``where``; ModelFileError when missing, not a group, or reached by a link out of the file."""
        node = self._resolve(where)
        if not isinstance(node, h5py.Group):
            raise self.error(where, f"expected a group, found a {type(node).__name__}")
        return node

    def _resolve(self, where, missing_ok=False, hops=0):
        """The object at the absolute path ``where``, following only links that stay inside the file."""
        self.where = where
        node = self.file
        parts = [part for part in where.split("/") if part not in ("", ".")]
        for depth, part in enumerate(parts):
            if not isinstance(node, h5py.Group):
                raise self.error(where, f"{'/'.join(parts[:depth])!r} is not a group")
            link = node.get(part, getlink=True)
            if link is None:
                if missing_ok:
                    return None
                raise self.error(where, f"{part!r} is missing")
            if isinstance(link, h5py.SoftLink):
                if hops > 16:
                    raise self.error(where, "soft links loop")
                node = self._resolve(link.path if link.path.startswith("/") else f"{node.name}/{link.path}",
                                     missing_ok, hops + 1)
                if node is None:
                    return None
            elif isinstance(link, h5py.HardLink):
                node = node[part]
            else:
                raise self.error(where, f"{part!r} is a {type(link).__name__} to outside the file; model files "
                                        "must hold their data themselves")
        self.where = where
        return node

    # -- attributes ---------------------------------------------------------------------------
    def json_attribute(self, name):
        """A root JSON attribute parsed (None when absent), its checksum verified when nnengine recorded one."""
        self.where = f"attribute {name}"
        if name not in self.file.attrs:
            return None
        text = _text(self.file.attrs[name])
        expected = (self.checksums or {}).get(name)
        if expected is not None and zlib.crc32(text.encode("utf8")) != expected:
            raise self.error(self.where, "the checksum does not match: the attribute is corrupted")
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise self.error(self.where, f"not valid JSON ({error})") from None
        except RecursionError:
            raise self.error(self.where, "the JSON is nested too deeply") from None

    def _config_checksums(self):
        if CONFIG_CHECKSUMS not in self.file.attrs:
            return None
        self.where = f"attribute {CONFIG_CHECKSUMS}"
        try:
            recorded = json.loads(_text(self.file.attrs[CONFIG_CHECKSUMS]))
        except (json.JSONDecodeError, RecursionError):
            recorded = None
        if not isinstance(recorded, dict) or not all(isinstance(v, int) for v in recorded.values()):
            raise self.error(self.where, "the checksum table is corrupted")
        return recorded

    def string_list(self, where, name):
        """A list-of-strings attribute of the group at ``where``, also when Keras split it into name0, name1, ..."""
        attributes = self.group(where).attrs
        self.where = f"{where} (attribute {name})"
        if name in attributes:
            values = [attributes[name]]
        else:
            values = []
            while f"{name}{len(values)}" in attributes:
                values.append(attributes[f"{name}{len(values)}"])
        strings = []
        for value in values:
            value = np.atleast_1d(value)
            if value.size == 0 and value.ndim == 1:
                continue                    # Keras writes a layer without weights as an empty float array
            if value.dtype.kind not in "SUO" or value.ndim != 1:
                raise self.error(self.where, f"expected a list of names, found {value.dtype} of shape {value.shape}")
            strings.extend(_text(v) for v in value)
        if not all(isinstance(s, str) for s in strings):
            raise self.error(self.where, "expected a list of names")
        return strings

    # -- datasets -----------------------------------------------------------------------------
    def shape(self, where):
        """The stored shape of the numeric dataset at ``where`` (its data unread), or None for anything else."""
        dataset = self._resolve(where, missing_ok=True)
        return tuple(dataset.shape) if isinstance(dataset, h5py.Dataset) else None

    def array(self, where, expected_shape=None):
        """The numeric dataset at ``where`` as a numpy array, checked before and after reading.

        ``expected_shape`` (a tuple) is compared with the stored shape before any data is read.
        """
        dataset = self._resolve(where)
        if not isinstance(dataset, h5py.Dataset):
            raise self.error(where, f"expected a dataset of numbers, found a {type(dataset).__name__}")
        self._check_storage(where, dataset)
        if expected_shape is not None and tuple(dataset.shape) != tuple(expected_shape):
            raise self.error(where, f"stored shape {tuple(dataset.shape)} does not match the model's "
                                    f"{tuple(expected_shape)}")
        values = np.asarray(dataset[()])
        recorded = dataset.attrs.get(CHECKSUM_ATTRIBUTE)
        if recorded is None and self.checksums is not None:
            raise self.error(where, "the checksum nnengine writes beside every weight is missing")
        if recorded is not None and int(np.asarray(recorded).reshape(-1)[0]) != checksum(values):
            raise self.error(where, "the checksum does not match: the weights are corrupted")
        return values

    def _check_storage(self, where, dataset):
        """Refuse datasets that are not plain numbers stored in this file, before reading them."""
        if dataset.dtype.kind not in "biuf" or dataset.dtype.fields is not None:
            raise self.error(where, f"holds {dataset.dtype}, not numbers")
        if dataset.is_virtual:
            raise self.error(where, "is a virtual dataset, which reads other files")
        if dataset.external:
            raise self.error(where, "keeps its data in external files")
        if dataset.id.get_create_plist().get_nfilters():
            raise self.error(where, "is compressed or filtered (nnengine and Keras write plain arrays; filters can "
                                    "load plugins and expand a small file into a huge allocation)")
        if dataset.id.get_storage_size() < dataset.nbytes:
            raise self.error(where, f"declares {dataset.nbytes} bytes but stores "
                                    f"{dataset.id.get_storage_size()} in the file")


def _text(value):
    """An attribute value as str (h5py gives bytes or str)."""
    return value.decode("utf8") if isinstance(value, bytes) else str(value)
