"""Saving files so that nothing is lost: write to a temporary file, check it in, rename it over the target.

* The file is written under a temporary name beside the target, flushed to disk, then renamed over
  the target: a reader sees the old complete file or the new complete file, never a mix.
* A symlink is written through: the temporary file goes beside the link's target and replaces it.
* Temporary names say what they are (``.model.h5.nnengine-tmp.<host>.<pid>.<random>``); a save
  removes those that killed saves of the same target left behind (their process is gone).
* Any failure while writing (full disk, file-size limit, permissions) is an ``OSError`` naming the
  path; the temporary file is removed and the old file is untouched.
* Checksums: the CRC-32 of every weight array (dataset attribute ``nnengine_crc32``), of the JSON
  attributes (root attribute ``nnengine_checksums``) and of the whole file (in HDF5's 512-byte user
  block, which the HDF5 library skips). h5io.py verifies them on load.
"""
import contextlib
import errno
import json
import os
import re
import secrets
import socket
import threading
import zlib

import h5py
import numpy as np

from . import arguments

__all__ = ["atomic_save", "checksum", "write_dataset", "json_checksums", "remove_stale_temps", "body_checksum",
           "TEMP_MARK", "HEADER_SIZE", "HEADER_MAGIC", "CHECKSUM_ATTRIBUTE", "CONFIG_CHECKSUMS"]

#: what every temporary file of a save has in its name, after ".<target's name>"
TEMP_MARK = ".nnengine-tmp."
CHECKSUM_ATTRIBUTE = "nnengine_crc32"
CONFIG_CHECKSUMS = "nnengine_checksums"
#: the user block that holds the whole-file checksum: its size (HDF5's minimum) and first bytes
HEADER_SIZE = 512
HEADER_MAGIC = b"nnengine model file\n"
_HOST = socket.gethostname().replace("/", "_") or "host"
_ACTIVE_TEMPS = set()            # this process's saves in progress (another thread's temp file is not stale)
_ACTIVE_LOCK = threading.Lock()


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
def atomic_save(caller, path, overwrite, write, hdf5=True):
    """Write an HDF5 file with ``write(h5file)`` under a temporary name, then rename it over ``path``; with
    ``hdf5=False``, any file, with ``write(binary file)`` (then without the whole-file checksum header).

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
        _write_and_replace(temporary, target, write, hdf5)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        if not isinstance(error, Exception):          # KeyboardInterrupt, SystemExit: clean up, pass on
            raise
        code = _errno_of(error)
        raise OSError(code, f"{caller}: could not write {path!r} ({type(error).__name__}: {error}); the "
                            "previous file, if any, is untouched") from error
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE_TEMPS.discard(temporary)


def _errno_of(error):
    """The OS error number behind a failed write: the exception's own, or the one HDF5 quotes in its message."""
    if getattr(error, "errno", None):
        return error.errno
    quoted = re.search(r"errno = (\d+)", str(error))
    return int(quoted.group(1)) if quoted else errno.EIO


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


def _write_and_replace(temporary, target, write, hdf5=True):
    if hdf5:
        with h5py.File(temporary, "w", userblock_size=HEADER_SIZE) as f:
            write(f)
    with open(temporary, "rb+") as f:
        if hdf5:
            f.write(_header(*body_checksum(f)))
        else:
            write(f)
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


def body_checksum(f):
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
