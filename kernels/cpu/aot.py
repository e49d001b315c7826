"""The ahead-of-time tier of the CPU kernels: a small model's warm path without loading numba.

Why: a warm process that trains a small model spends most of its time on numba itself, not on the
kernels: importing it (~0.15 s), loading its typing and target registries at the first cached kernel
(~0.15 s), and at exit three full garbage collections over its ~100,000 objects (~0.15 s). The kernels
such a model needs are few: the dense layer's bias and activation and their gradient, softmax and its
cross-entropy on small rows, the optimizer updates, the elementwise loops, and the product (BLAS).
They are compiled once, at install, into an extension module (``_aot``, built by ``aot_build.py`` with
numba's ``pycc``) that imports without numba; the product calls numpy's bundled OpenBLAS through
ctypes (``blas_library.gemm``), the routine the numba code calls.

How a call is served: the backend names its kernel modules through ``KernelModule`` proxies. An
exported kernel is an ``AotKernel``, which runs the compiled export when

* the extension was built from the kernel sources of this checkout, by this numba, on this CPU (a
  digest of ``kernels/cpu/*.py``, ``activation_codes.py``, numba's and llvmlite's version files and
  the CPU's features is compiled into it, and a stale build is never used),
* numba is not loaded in this process (once it is, its dispatchers are cheaper to reach, and the
  ahead-of-time tier has nothing left to save), nor has the tier served ``SERVE_CALLS`` calls yet
  (our argument checks and ctypes' product cost more per call than numba's dispatch: the document's
  replayed step takes 0.18 ms here against 0.12 ms on numba, so a long process changes over), and
* every argument has exactly the type the export was compiled for (``EXPORTS``: C-contiguous,
  aligned, writeable arrays of the dtype, typed scalars, bools, ints): an export does not check
  its arguments, so a float64 array handed to a float32 export would be read as the wrong bytes.

Anything else goes to numba's dispatcher, which is imported then. Both run the same compiled Python
function with the same flags (an export calls the ``@njit`` kernel, with its ``error_model``), and
``tests/test_aot.py`` checks that their results are bitwise equal. ``NNENGINE_AOT=0`` switches the
tier off, and so does ``NUMBA_DISABLE_JIT`` (whoever debugs the kernels as Python code gets Python
code). Lowering a plan to one numba function (``backends/numba_lowering.py``) waits while this tier
serves, until the plan's ``capture.LOWER_AFTER_REPLAYS``-th replay.
"""
import hashlib
import importlib
import importlib.util
import os
import platform
import sys

import numpy as np

from . import blas_library

#: the kernels built ahead of time, by (module, name), with one letter per argument:
#: m a 2-D array of the kernel's dtype, v a 1-D array of it, l a 1-D int64 array, s a scalar of the dtype,
#: b a bool, i an int (int64). The elementwise loops serve operands above config.NUMPY_MAX_ELEMENTS (smaller
#: ones take numpy's ufuncs); exp32, the vectorised exp, stays out (small softmaxes take libm's exp).
EXPORTS = {
    ("nn", "bias_activation"): "mvbiss",
    ("nn", "activation_grad"): "mmimvss",
    ("nn", "softmax_rows_libm"): "mmsbmm",
    ("nn", "log_softmax_rows_libm"): "mmbmm",
    ("nn", "softmax_cross_entropy_soft_libm"): "mmbvmbmm",
    ("nn", "softmax_cross_entropy_labels_libm"): "mlbvmbmm",
    ("optim", "sgd"): "vvvsssbb",
    ("optim", "adam"): "vvvvvsssssb",
    ("optim", "rmsprop"): "vvvvvssssssbb",
    ("optim", "adagrad"): "vvvsss",
    ("elementwise", "unary"): "ivvss",
    ("elementwise", "binary_same"): "ivvv",
    ("elementwise", "binary_scalar"): "ivsvb",
    ("elementwise", "binary_rows"): "imvmb",
    ("reduce", "argmax_matches_labels"): "mll",
    ("reduce", "argmax_matches_rows"): "mml",
}
#: the product, served by ctypes (``blas_library.gemm``) rather than by the extension
_CTYPES_EXPORTS = {("blas", "gemm"): "mmmbb"}
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
EXTENSION = "_aot"

_NUMBA_TYPES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}
_NDIM = {"m": 2, "v": 1, "l": 1}


def export_name(module, name, dtype):
    """The name of a kernel's export for ``dtype`` in the extension, e.g. ``nn__bias_activation__float32``."""
    return f"{module}__{name}__{np.dtype(dtype).name}"


def signature(spec, dtype):
    """The numba signature of an export: ``spec`` (letters of ``EXPORTS``) for ``dtype``."""
    real = _NUMBA_TYPES[np.dtype(dtype)]
    kinds = {"m": f"{real}[:, ::1]", "v": f"{real}[::1]", "l": "int64[::1]", "s": real, "b": "boolean",
             "i": "int64"}
    return "void(" + ", ".join(kinds[letter] for letter in spec) + ")"


def sources_digest():
    """A 62-bit digest of what an extension is built from: the kernel sources (``kernels/cpu/*.py`` and the
    activation codes), the compiler (numba's and llvmlite's version files: another numba may optimise a
    kernel otherwise) and the CPU (``cpu_identity``). The extension records it; a build whose digest
    differs from this process's is stale, and not used."""
    here = os.path.dirname(os.path.abspath(__file__))
    paths = sorted(os.path.join(here, name) for name in os.listdir(here) if name.endswith(".py"))
    digest = hashlib.sha256(cpu_identity().encode() + b"\0")
    for path in paths + [os.path.join(here, os.pardir, "activation_codes.py"), *_compiler_files()]:
        try:
            with open(path, "rb") as source:
                content = source.read()
        except OSError:                         # a compiler without its version file: that absence is its mark
            content = b"missing"
        digest.update(os.path.basename(path).encode() + b"\0" + content + b"\0")
    return int.from_bytes(digest.digest()[:8], "little") >> 2


def _compiler_files():
    """numba's and llvmlite's version files, found without importing either (importing numba is what this
    tier saves; importlib.metadata alone costs 25 ms)."""
    files = []
    for package in ("numba", "llvmlite"):
        spec = importlib.util.find_spec(package)
        origin = spec.origin if spec is not None and spec.origin else os.path.join(package, "__init__.py")
        files.append(os.path.join(os.path.dirname(origin), "_version.py"))
    return files


def cpu_identity():
    """The CPU as numba's code generation sees it: the feature flags (Linux's /proc/cpuinfo) or the
    processor's name, and numba's own overrides (``NUMBA_CPU_NAME``, ``NUMBA_CPU_FEATURES``).

    Why the CPU matters: an export calls the kernel as numba's JIT optimised it on the build machine, for
    that machine's vector width, and one kernel (``nn.row_sum``) may reassociate its sum over vector
    lanes, so its results follow the width. On the machine it was built on, the JIT makes the same
    choices (``tests/test_aot.py`` checks it); elsewhere it might not, so a build moved to another CPU
    is not used.
    """
    overrides = f"{os.environ.get('NUMBA_CPU_NAME', '')}|{os.environ.get('NUMBA_CPU_FEATURES', '')}"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith(("flags", "Features")):         # x86, Arm
                    return f"{platform.machine()}|{line.strip()}|{overrides}"
    except OSError:
        pass
    return f"{platform.machine()}|{platform.processor()}|{overrides}"


def _load_extension():
    """(the extension module or None, why it is not used): built, fresh and not switched off."""
    if os.environ.get("NNENGINE_AOT", "1") == "0":
        return None, "switched off by NNENGINE_AOT=0"
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):      # kernels asked to run as Python code
        return None, "switched off by NUMBA_DISABLE_JIT (the kernels run as Python, as numba was asked)"
    try:
        extension = importlib.import_module(f"{__package__}.{EXTENSION}")
    except ImportError as error:
        return None, f"not built ({error}); see docs/kernels.md, 'Ahead-of-time kernels'"
    except Exception as error:          # a damaged file whose initialisation fails: the JIT serves, as unbuilt
        return None, f"unusable ({type(error).__name__}: {error}); rebuild it or set NNENGINE_AOT=0"
    recorded = getattr(extension, "sources_digest", None)
    if not callable(recorded):
        return None, "not an extension of this build (it records no digest)"
    if recorded() != sources_digest():
        return None, ("built from other kernel sources than these (stale); rebuild it with "
                      "`python -m nnengine.kernels.cpu.aot_build`")
    return extension, None


_EXTENSION, REASON = _load_extension()


def available():
    """True when the extension is loaded (built, fresh, not switched off); ``REASON`` says why not."""
    return _EXTENSION is not None


#: calls the exports serve in a process before numba's kernels take over (about 1,000 training steps of
#: the document's model, when its plans lower too): a process that computes this much is a long one, where
#: numba's dispatch (cheaper per call than our argument checks and ctypes' product) earns back its load
SERVE_CALLS = 25_000


def serving():
    """True while the ahead-of-time tier runs the exported kernels: available, numba not loaded, and fewer
    than ``SERVE_CALLS`` calls served."""
    return _EXTENSION is not None and "numba" not in sys.modules and _SERVED[0] < SERVE_CALLS


class AotKernel:
    """A kernel run by its ahead-of-time export when the arguments match one exactly, else by numba.

    Called as the numba kernel is (same arguments, results in the ``out`` arrays it is given).
    """

    __slots__ = ("module", "name", "spec", "_exports", "_jit", "_first_array", "_arrays", "_others")

    def __init__(self, module, name, spec, exports):
        self.module, self.name, self.spec = module, name, spec
        self._exports = exports                 # dtype -> compiled function
        self._jit = None
        self._first_array = min(spec.index(letter) for letter in "mv" if letter in spec)   # its dtype is the export's
        # (position, rank, whether int64) of each array, and (position, letter) of each other argument
        self._arrays = tuple((i, _NDIM[letter], letter == "l") for i, letter in enumerate(spec) if letter in _NDIM)
        self._others = {dtype: tuple((i, _SCALAR_TYPES[letter](dtype)) for i, letter in enumerate(spec)
                                     if letter not in _NDIM) for dtype in exports}

    def __repr__(self):
        return f"<ahead-of-time kernel {self.module.name}.{self.name}>"

    def __call__(self, *args):
        if serving():
            export = self._matching(args)
            if export is not None:
                _SERVED[0] += 1
                return export(*args)
        return self.jit(*args)

    @property
    def jit(self):
        """numba's dispatcher of this kernel (importing numba on first use)."""
        if self._jit is None:
            self._jit = getattr(self.module.real(), self.name)
        return self._jit

    def _matching(self, args):
        """The export compiled for exactly these arguments' types, or None."""
        if len(args) != len(self.spec):
            return None
        first = args[self._first_array]
        dtype = first.dtype if type(first) is np.ndarray else None
        export = self._exports.get(dtype)
        if export is None:
            return None
        for position, ndim, integer in self._arrays:
            value = args[position]
            # numpy's own dtypes are singletons: `is` also refuses a byte-swapped float32
            if type(value) is not np.ndarray or value.ndim != ndim or value.dtype is not (_INT64 if integer else dtype):
                return None
            if value.flags.num & _USABLE != _USABLE:
                return None
        for position, types in self._others[dtype]:
            if type(args[position]) not in types:
                return None
        return export


#: numpy's flag bits an export needs: C-contiguous, aligned, writeable (NPY_ARRAY_* in ndarraytypes.h)
_USABLE = 0x0001 | 0x0100 | 0x0400
_INT64 = np.dtype(np.int64)
#: how many calls the exports have served in this process (see SERVE_CALLS)
_SERVED = [0]


#: the types numba gives the scalar letters of ``EXPORTS`` for an export of a dtype: s the dtype's scalar
#: (a Python float would be float64 to numba), b bool, i int64 (bool is not among them: numba types it apart)
_SCALAR_TYPES = {"s": lambda dtype: frozenset({dtype.type}), "b": lambda dtype: frozenset({bool, np.bool_}),
                 "i": lambda dtype: frozenset({int, np.int64})}


def _exports_of(module, name):
    """(argument letters, dtype -> compiled function) of kernel ``module.name``, or None when the tier has
    no export of it (or no extension: then it serves nothing, the ctypes product included)."""
    if _EXTENSION is None:
        return None
    if (module, name) in _CTYPES_EXPORTS and blas_library.AVAILABLE:
        return _CTYPES_EXPORTS[(module, name)], {dtype: blas_library.gemm for dtype in DTYPES}
    if (module, name) not in EXPORTS:
        return None
    return EXPORTS[(module, name)], {dtype: getattr(_EXTENSION, export_name(module, name, dtype)) for dtype in DTYPES}


class KernelModule:
    """Stands for ``kernels/cpu/<name>.py`` without importing it: an exported kernel comes back as an
    ``AotKernel``; any other name imports the numba module (and numba) and is taken from it."""

    def __init__(self, name):
        self.name = name

    def real(self):
        """The numba kernel module itself."""
        return importlib.import_module(f"{__package__}.{self.name}")

    def __getattr__(self, attribute):            # only for names not looked up before
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        exported = _exports_of(self.name, attribute)
        value = AotKernel(self, attribute, *exported) if exported else getattr(self.real(), attribute)
        setattr(self, attribute, value)
        return value


def kernel_modules(*names):
    """``KernelModule`` proxies for the named kernel modules, in order."""
    return tuple(KernelModule(name) for name in names)
