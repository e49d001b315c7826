"""Careful HDF5 I/O under saving.py: atomic saves that survive kills and full disks, reads that treat a file as data.

Saving (``atomic_save``):

* the file is written under a temporary name beside the target, flushed to disk, then renamed over
  the target: a reader sees the old complete file or the new complete file, never a mix;
* a symlink is written through: the temporary file goes beside the link's target and replaces it;
* temporary names say what they are (``.model.h5.nnengine-tmp.<host>.<pid>.<random>``); a save
  removes those that killed saves of the same target left behind (their process is gone);
* any failure while writing (full disk, file-size limit, permissions) is an ``OSError`` naming the
  path; the temporary file is removed and the old file is untouched.

Reading (``ModelFileReader``): a model file comes from anywhere, so it is checked before it is used.

* Only the file itself is read: external links, external storage, virtual datasets and
  user-defined links are refused, and so are compressed or filtered datasets (neither Keras nor
  nnengine writes them, and a filter can load a plugin library or expand a few bytes into gigabytes).
* A dataset must store every byte it declares: an unwritten dataset would read as zeros and let a
  tiny file declare huge arrays. Callers give the shape they expect and it is compared before any
  data is read, so a file cannot make the loader allocate more than its own size plus the model.
* Every problem is a ``ModelFileError`` (a ValueError) naming the file, the place in it and what is
  wrong; errors of h5py, json and the config code are wrapped in it, never shown raw.
* Checksums: nnengine writes the CRC-32 of every weight array (attribute ``nnengine_crc32``, which
  Keras ignores) and of its JSON attributes (root attribute ``nnengine_checksums``), and verifies
  them on load, so corrupted weights or configs are detected; Keras files have none and still load.
* The whole file is checksummed too, in HDF5's user block (512 bytes before the HDF5 data that
  the HDF5 library skips, so Keras and h5py read these files as usual). It is verified BEFORE the
  HDF5 library parses anything: the library can hang or crash on corrupted metadata (a fuzz run
  here found a flipped byte that sends its attribute reader into an endless loop).
* A file without that header (written by Keras, or by hand) is first opened by a child process
  that reads every object and attribute the loader would; if the child hangs (``PROBE_SECONDS``) or
  dies, the file is refused and this process never touches it.
"""
import contextlib
import errno
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import warnings
import zlib

import h5py
import numpy as np

from . import arguments

__all__ = ["ModelFileError", "ModelFileReader", "atomic_save", "checksum", "write_dataset", "json_checksums",
           "TEMP_MARK"]

#: what every temporary file of a save has in its name, after ".<target's name>"
TEMP_MARK = ".nnengine-tmp."
CHECKSUM_ATTRIBUTE = "nnengine_crc32"
CONFIG_CHECKSUMS = "nnengine_checksums"
#: the user block that holds the whole-file checksum: its size (HDF5's minimum) and first bytes
HEADER_SIZE = 512
HEADER_MAGIC = b"nnengine model file\n"
#: how long the child process may take to read a foreign file's structure before the file is refused
PROBE_SECONDS = 20
_HOST = socket.gethostname().replace("/", "_") or "host"
_ACTIVE_TEMPS = set()            # this process's saves in progress (another thread's temp file is not stale)
_ACTIVE_LOCK = threading.Lock()


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
# Checksums
# ---------------------------------------------------------------------------------------------
def checksum(array):
    """CRC-32 of an array's values as little-endian bytes in C order (the same on every machine)."""
    array = np.ascontiguousarray(array)
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return zlib.crc32(memoryview(little).cast("B")) if little.size else 0


def write_dataset(group, name, value):
    """Create dataset ``name`` from ``value`` with its checksum attribute."""
    value = np.asarray(value)
    dataset = group.create_dataset(name, data=value)
    dataset.attrs[CHECKSUM_ATTRIBUTE] = np.int64(checksum(value))
    return dataset


def json_checksums(**texts):
    """The root attribute that records the CRC-32 of each JSON attribute written (name -> checksum)."""
    return json.dumps({name: zlib.crc32(text.encode("utf8")) for name, text in texts.items()})


# ---------------------------------------------------------------------------------------------
# Atomic saves
# ---------------------------------------------------------------------------------------------
def atomic_save(caller, path, overwrite, write):
    """Write an HDF5 file with ``write(h5file)`` under a temporary name, then rename it over ``path``.

    ``write`` should only write prepared data: every exception it raises is reported as an OSError
    of the save.
    """
    path = arguments.path(caller, "filepath", path)
    overwrite = arguments.boolean(caller, "overwrite", overwrite)
    target = os.path.realpath(path) if os.path.islink(path) else os.path.abspath(path)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, f"{caller}: cannot save to {path!r}: the directory {directory!r} "
                                "does not exist")
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, f"{caller}: cannot save to {path!r}: it is a directory")
    if not overwrite and os.path.exists(target):
        raise FileExistsError(errno.EEXIST, f"{caller}: {path!r} exists and overwrite=False")
    remove_stale_temps(target)
    temporary = _new_temp(caller, path, target)
    try:
        _write_and_replace(temporary, target, write)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        if not isinstance(error, Exception):          # KeyboardInterrupt, SystemExit: clean up, pass on
            raise
        code = getattr(error, "errno", None) or errno.EIO
        raise OSError(code, f"{caller}: could not write {path!r} ({type(error).__name__}: {error}); the "
                            "previous file, if any, is untouched") from error
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE_TEMPS.discard(temporary)


def _new_temp(caller, path, target):
    """Create (exclusively) and register this save's temporary file; a PermissionError when the directory refuses."""
    directory, name = os.path.split(target)
    temporary = os.path.join(directory, f".{name}{TEMP_MARK}{_HOST}.{os.getpid()}.{secrets.token_hex(4)}")
    with _ACTIVE_LOCK:
        _ACTIVE_TEMPS.add(temporary)
    try:
        os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as error:
        with _ACTIVE_LOCK:
            _ACTIVE_TEMPS.discard(temporary)
        raise type(error)(error.errno, f"{caller}: cannot save to {path!r}: cannot write in {directory!r} "
                                       f"({error.strerror})") from None
    return temporary


def _write_and_replace(temporary, target, write):
    with h5py.File(temporary, "w", userblock_size=HEADER_SIZE) as f:
        write(f)
    with open(temporary, "rb+") as f:
        f.write(_header(*_body_checksum(f)))
        f.flush()
        os.fsync(f.fileno())
    os.chmod(temporary, _new_file_mode(target))
    os.replace(temporary, target)
    with contextlib.suppress(OSError):                 # make the rename itself durable where the OS allows
        directory = os.open(os.path.dirname(target), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _header(crc, length):
    """The user block: magic line, then 'crc32 <hex> length <bytes>' of everything after it, zero-padded."""
    text = HEADER_MAGIC + f"crc32 {crc:08x} length {length}\n".encode("ascii")
    return text.ljust(HEADER_SIZE, b"\0")


def _body_checksum(f):
    """(CRC-32, length) of an open binary file's bytes after the user block, read in chunks."""
    f.seek(HEADER_SIZE)
    crc, length = 0, 0
    while True:
        chunk = f.read(1 << 22)
        if not chunk:
            break
        crc, length = zlib.crc32(chunk, crc), length + len(chunk)
    f.seek(0)
    return crc, length


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
        actual_crc, actual_length = _body_checksum(f)
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


def _new_file_mode(target):
    """The permissions the saved file gets: those of the file it replaces, else what the umask allows.

    (The temporary file is created private, 0600; without this a save would quietly narrow them.)
    """
    if os.path.exists(target):
        return os.stat(target).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def remove_stale_temps(target):
    """Remove the temporary files that killed saves of ``target`` left: same host, process gone."""
    directory, name = os.path.split(target)
    prefix = f".{name}{TEMP_MARK}"
    try:
        candidates = [entry for entry in os.listdir(directory) if entry.startswith(prefix)]
    except OSError:
        return
    for entry in candidates:
        host, _, rest = entry[len(prefix):].rpartition(".")[0].rpartition(".")
        full = os.path.join(directory, entry)
        if host == _HOST and rest.isdigit() and _is_stale(int(rest), full):
            with contextlib.suppress(OSError):
                os.remove(full)


def _is_stale(pid, full_path):
    """True when the process that made this temporary file is gone (or is this one and no longer saving it)."""
    if pid == os.getpid():
        with _ACTIVE_LOCK:
            return full_path not in _ACTIVE_TEMPS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:              # it exists but belongs to someone else
        return False
    return False


# ---------------------------------------------------------------------------------------------
# Checked reads
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
        problem = None if verified else probe_in_child(path)
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
            if value.dtype.kind not in "SUO" or value.ndim != 1:
                raise self.error(self.where, f"expected a list of names, found {value.dtype} of shape {value.shape}")
            strings.extend(_text(v) for v in value)
        if not all(isinstance(s, str) for s in strings):
            raise self.error(self.where, "expected a list of names")
        return strings

    # -- datasets -----------------------------------------------------------------------------
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
