"""Load our CUDA C sources: expand their includes, compile each once per process, check them.

Every ``.cu`` file in this directory holds kernels written as templates over the element type
``T``. The loader instantiates each kernel for the C types its file lists in ``SOURCES``
(``softmax_rows<float>``, ``softmax_rows<double>``, ...) through NVRTC name expressions, so one
compilation serves every dtype.

Two ways in:

* ``function(source, kernel, dtype)``: the compiled kernel for a dtype, on the current device.
  Each source is compiled once per process by ``cupy.RawModule`` (CuPy also keeps the binary in
  its on-disk cache) and each function is looked up once per device (both memoized).
* ``compile_to_cubin(source, arch)``: NVRTC alone, no GPU needed. It compiles a source to a
  cubin with the include paths and flags CuPy's own compilation uses, and raises
  ``CudaCompileError`` whose message carries the compiler's ``file(line): error`` lines. CI runs
  it for every source (``tests/test_cuda_compile.py``).

The activation codes come from ``kernels/activation_codes.py`` as ``#define`` lines in front
of the text. Our quoted ``#include "x.cuh"`` lines are expanded here, not by the compiler, so that a source's
text is all of its code: CuPy's disk cache is keyed by that text, and a change to a header must
recompile the kernels that use it. ``#line`` directives keep compiler messages pointing at the
real file and line.
"""
import re
import threading
from pathlib import Path

import numpy as np

from ..activation_codes import cuda_defines

SOURCE_DIR = Path(__file__).resolve().parent

FLOAT_TYPES = ("float", "double")
ALL_TYPES = FLOAT_TYPES + ("int", "long long")

#: the C element types each source's kernels are instantiated for
SOURCES = {
    "nn.cu": FLOAT_TYPES,
    "optim.cu": FLOAT_TYPES,
    "gemm.cu": FLOAT_TYPES,
    "index.cu": ALL_TYPES,
    "reduce.cu": ALL_TYPES,
    "windows.cu": FLOAT_TYPES,
    "norm.cu": FLOAT_TYPES,
    "recurrent.cu": FLOAT_TYPES,
}

#: numpy dtype -> the C type our templates are instantiated with
C_TYPES = {
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    np.dtype(np.int32): "int",
    np.dtype(np.int64): "long long",
}

#: the GPU architecture CI compiles for (Hopper: H100/H200)
CHECK_ARCH = "sm_90"

# What CuPy adds to every NVRTC compilation besides its include paths (see cupy.cuda.compiler):
# flush float32 denormals to zero, and treat unannotated functions as device functions.
_CUPY_FLAGS = ("-ftz=true", "--device-as-default-execution-space")

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')
_KERNEL = re.compile(
    r"template\s*<\s*typename\s+T\s*>\s*__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(([^)]*)\)")


class CudaCompileError(RuntimeError):
    """A CUDA source failed to compile; the message holds the compiler's log (file and line)."""


def source_path(name):
    """The path of source ``name`` ("nn.cu") in this directory; ValueError for an unknown name."""
    path = SOURCE_DIR / name
    if not path.is_file():
        raise ValueError(f"no CUDA source {name!r} in {SOURCE_DIR}")
    return path


def _display_name(path):
    """How messages name a source: relative to the repository, e.g. kernels/cuda/nn.cu."""
    return f"kernels/cuda/{path.name}" if path.parent == SOURCE_DIR else str(path)


def expand(path, _seen=None):
    """The text of a source with our quoted includes inlined once each, with ``#line`` markers.

    The top-level text starts with the activation codes of ``kernels/activation_codes.py`` as
    ``#define`` lines, so the CUDA sources and the Python side share one table.
    """
    path = Path(path)
    top_level = _seen is None
    seen = set() if top_level else _seen
    lines = [cuda_defines()] if top_level else []
    lines.append(f'#line 1 "{_display_name(path)}"')
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = _INCLUDE.match(line)
        if match is None:
            lines.append("" if line.strip() == "#pragma once" else line)
            continue
        header = path.parent / match.group(1)
        if header not in seen:
            seen.add(header)
            lines.append(expand(header, seen))
        lines.append(f'#line {number + 1} "{_display_name(path)}"')
    return "\n".join(lines)


def pointer(array):
    """The device address of a CuPy array's first element (what a table of arrays passes to a kernel)."""
    return array.data.ptr


def kernel_signatures(text):
    """``{name: [(C type, parameter name), ...]}`` for the templated kernels in CUDA source ``text``."""
    signatures = {}
    for name, params in _KERNEL.findall(text):
        pairs = [p.strip().rsplit(None, 1) for p in params.split(",")]
        signatures[name] = [(" ".join(c_type.split()), param) for c_type, param in pairs]
    return signatures


def kernel_names(text):
    """The names of the templated ``__global__`` kernels defined in CUDA source ``text``."""
    return list(kernel_signatures(text))


def instantiations(text, types):
    """Every kernel of CUDA source ``text`` for every C type in ``types``: ``["softmax_rows<float>", ...]``."""
    return [f"{kernel}<{c}>" for kernel in kernel_names(text) for c in types]


def c_type(dtype, allowed=FLOAT_TYPES, what="this kernel"):
    """The C type our templates use for ``dtype``; TypeError naming ``what`` when not ``allowed``."""
    c = C_TYPES.get(np.dtype(dtype))
    if c is None or c not in allowed:
        names = ", ".join(str(d) for d, t in C_TYPES.items() if t in allowed)
        raise TypeError(f"{what} on cuda supports dtypes {names}; got {np.dtype(dtype)}")
    return c


_MODULES = {}
_FUNCTIONS = {}
# first uses from several threads compile each source once (a compile takes seconds)
COMPILE_LOCK = threading.RLock()


def module(name):
    """The ``cupy.RawModule`` of source ``name``, created once per process (compiles on first use)."""
    mod = _MODULES.get(name)
    if mod is None:
        with COMPILE_LOCK:
            mod = _MODULES.get(name)
            if mod is None:
                import cupy
                text = expand(source_path(name))
                mod = _MODULES[name] = cupy.RawModule(code=text,
                                                      name_expressions=instantiations(text, SOURCES[name]))
    return mod


def function(name, kernel, dtype):
    """The compiled ``kernel`` of source ``name`` for ``dtype``, on the current device (memoized)."""
    import cupy
    key = (name, kernel, np.dtype(dtype), cupy.cuda.runtime.getDevice())
    fn = _FUNCTIONS.get(key)
    if fn is None:
        expression = f"{kernel}<{c_type(dtype, SOURCES[name], kernel)}>"
        with COMPILE_LOCK:
            fn = _FUNCTIONS[key] = module(name).get_function(expression)
    return fn


def cupy_compile_options():
    """The include paths and language flags CuPy gives NVRTC for its own kernels."""
    from cupy._core import core
    return tuple(core.assemble_cupy_compiler_options(()))


def nvrtc_compile(text, filename, expressions=(), arch=CHECK_ARCH):
    """Compile CUDA ``text`` to a cubin with NVRTC (no GPU needed); return its bytes.

    ``expressions`` are template instantiations to compile. Raises CudaCompileError with the
    compiler's log when compilation fails.
    """
    from cupy_backends.cuda.libs import nvrtc
    program = nvrtc.createProgram(text, filename, [], [])
    try:
        for expression in expressions:
            nvrtc.addNameExpression(program, expression)
        options = cupy_compile_options() + _CUPY_FLAGS + (f"-arch={arch}",)
        try:
            nvrtc.compileProgram(program, list(options))
        except nvrtc.NVRTCError as error:
            log = nvrtc.getProgramLog(program).strip()
            raise CudaCompileError(f"{filename} does not compile for {arch} ({error}):\n{log}") from None
        return nvrtc.getCUBIN(program)
    finally:
        nvrtc.destroyProgram(program)


def compile_to_cubin(name_or_path, arch=CHECK_ARCH, types=None):
    """Compile one source (a name in SOURCES or a path) and all its instantiations to a cubin.

    ``types`` overrides the C types to instantiate (default: the source's entry in SOURCES, or
    float and double for a path outside it).
    """
    listed = name_or_path in SOURCES
    path = source_path(name_or_path) if listed else Path(name_or_path)
    if types is None:
        types = SOURCES[name_or_path] if listed else FLOAT_TYPES
    text = expand(path)
    return nvrtc_compile(text, _display_name(path), instantiations(text, types), arch)
