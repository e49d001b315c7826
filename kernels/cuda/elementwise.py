"""The general elementwise primitives: unary and binary math, comparisons and where.

These are CuPy ``ElementwiseKernel`` objects built from our own one-line operations; CuPy
supplies numpy broadcasting, any memory layout and the loop, and the device functions the
operations call are ours, in ``elementwise.cuh`` (the kernels' preamble). ``T`` is the
operands' element type. Each kernel is created on first use and kept for the process; CuPy
compiles it once per dtype.

``check_source(c_type)`` turns every operation into a small kernel for one C type, so CI can
compile them all to a cubin with NVRTC, without a GPU (``tests/test_cuda_compile.py``).
"""
from . import loader

#: name -> operation, for in_params "T x" and out_params "T y"
UNARY = {
    "neg": "y = -x",
    "exp": "y = exp(x)",
    "log": "y = log(x)",
    "sqrt": "y = sqrt(x)",
    "tanh": "y = tanh(x)",
    "sigmoid": "y = nne_sigmoid(x)",
    "relu": "y = nne_relu(x)",
    "erf": "y = erf(x)",
}

#: name -> operation, for in_params "T a, T b" and out_params "T c"
BINARY = {
    "add": "c = a + b",
    "sub": "c = a - b",
    "mul": "c = a * b",
    "div": "c = a / b",
    "power": "c = nne_power(a, b)",
    "maximum": "c = nne_maximum(a, b)",
    "minimum": "c = nne_minimum(a, b)",
}

#: name -> operation, for in_params "T a, T b" and out_params "bool c"
COMPARE = {
    "equal": "c = a == b",
    "not_equal": "c = a != b",
    "less": "c = a < b",
    "less_equal": "c = a <= b",
    "greater": "c = a > b",
    "greater_equal": "c = a >= b",
}

WHERE = "y = cond ? a : b"

#: operations defined for integer operands too (the rest are floating only)
INTEGER_OK = {"neg", "add", "sub", "mul", "power", "maximum", "minimum", "where", *COMPARE}

_SIGNATURES = {
    "unary": ("T x", "T y"),
    "binary": ("T a, T b", "T c"),
    "compare": ("T a, T b", "bool c"),
    "where": ("bool cond, T a, T b", "T y"),
}


def operations():
    """Every operation as ``{name: (in_params, out_params, operation)}``."""
    table = {name: (*_SIGNATURES["unary"], op) for name, op in UNARY.items()}
    table.update({name: (*_SIGNATURES["binary"], op) for name, op in BINARY.items()})
    table.update({name: (*_SIGNATURES["compare"], op) for name, op in COMPARE.items()})
    table["where"] = (*_SIGNATURES["where"], WHERE)
    return table


def preamble():
    """Our device functions for the operations: elementwise.cuh with its includes expanded."""
    return loader.expand(loader.SOURCE_DIR / "elementwise.cuh")


_KERNELS = {}


def kernel(name):
    """The ``cupy.ElementwiseKernel`` of operation ``name`` (created once per process)."""
    k = _KERNELS.get(name)
    if k is None:
        with loader.COMPILE_LOCK:
            k = _KERNELS.get(name)
            if k is None:
                import cupy
                in_params, out_params, operation = operations()[name]
                k = _KERNELS[name] = cupy.ElementwiseKernel(
                    in_params, out_params, operation, f"nne_{name}", preamble=preamble())
    return k


def check_dtype(name, dtype):
    """TypeError unless operation ``name`` is defined for ``dtype`` on cuda."""
    allowed = loader.ALL_TYPES if name in INTEGER_OK else loader.FLOAT_TYPES
    loader.c_type(dtype, allowed, what=name)


def run(name, *operands):
    """Apply operation ``name`` to cupy arrays (broadcast); return the new result array."""
    check_dtype(name, operands[-1].dtype)
    return kernel(name)(*operands)


def _check_kernel(name, in_params, out_params, operation, c_type):
    """One operation as a plain kernel over single elements, for the compile check."""
    params = [p.split() for p in (in_params + ", " + out_params).split(", ")]
    inputs = {n for _, n in (p.split() for p in in_params.split(", "))}

    def c(t):
        """The C type of a parameter declared with type ``t`` ("T" or "bool")."""
        return "bool" if t == "bool" else c_type

    signature = ", ".join(f"{'const ' if n in inputs else ''}{c(t)}* {n}_ptr" for t, n in params)
    body = [f"typedef {c_type} T;"]
    body += [f"{c(t)} {n} = {n}_ptr[0];" if n in inputs else f"{c(t)} {n};" for t, n in params]
    body += [f"{operation};"]
    body += [f"{n}_ptr[0] = {n};" for _, n in params if n not in inputs]
    kernel_name = f"check_{name}_{c_type.replace(' ', '_')}"
    return f'extern "C" __global__ void {kernel_name}({signature}) {{ {" ".join(body)} }}'


def cupy_headers():
    """The #include lines CuPy puts before every ElementwiseKernel."""
    try:
        from cupy._core import core
        headers = core._cupy_header_list
    except (ImportError, AttributeError):
        headers = ["cupy/complex.cuh", "cupy/carray.cuh", "cupy/atomics.cuh", "cupy/math_constants.h"]
    return "\n".join(f"#include <{h}>" for h in headers)


def check_source(c_type):
    """CUDA source holding every operation valid for ``c_type`` as a kernel, after CuPy's headers."""
    allowed = [name for name in operations() if c_type in loader.FLOAT_TYPES or name in INTEGER_OK]
    kernels = [_check_kernel(name, *operations()[name], c_type) for name in allowed]
    return "\n".join([cupy_headers(), preamble(), '#line 1 "elementwise.py operations"', *kernels])
