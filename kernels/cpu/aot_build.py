"""Build the ahead-of-time extension of ``aot.py`` with numba's ``pycc``: ``python -m nnengine.kernels.cpu.aot_build``.

``pip install`` runs it (``setup.py``'s ``build_ext``); run it by hand after changing a kernel in an
editable checkout (a stale build is not used, see ``aot.py``). It needs numba and a C compiler, and
takes a few seconds.

Each export is a small trampoline, ``def f(a0, ..., aN): kernel(a0, ..., aN)``, compiled for the
signature ``aot.signature`` gives. The trampoline calls the ``@njit`` kernel, so numba compiles the
kernel with the kernel's own options (``error_model="numpy"``: x / 0 is inf, not an exception) and
optimises it for this machine's CPU, exactly as its dispatcher does; the extension's machine code
targets this CPU too (``target_cpu = "host"``: the document's replayed step took 0.213 ms against
0.236 ms with generic x86-64 code), which is why the build records the CPU (``aot.cpu_identity``) and
is not used on another.
"""
import argparse
import importlib
import os
import sys

from . import aot


def _trampoline(kernel, arity):
    """A function of ``arity`` arguments that calls ``kernel`` with them (written out: pycc needs a fixed arity)."""
    names = ", ".join(f"a{index}" for index in range(arity))
    namespace = {"kernel": kernel}
    exec(f"def trampoline({names}):\n    kernel({names})\n", namespace)      # our own fixed source, no input
    return namespace["trampoline"]


def _constant(value):
    """A function returning ``value`` (the sources' digest), for the extension to report."""
    namespace = {}
    exec(f"def constant():\n    return {int(value)}\n", namespace)
    return namespace["constant"]


def build(path, verbose=False):
    """Compile every export of ``aot.EXPORTS`` into the extension file ``path`` (its name must end in
    ``_aot`` and the interpreter's extension suffix); return ``path``."""
    from numba.pycc import CC

    folder, filename = os.path.split(os.path.abspath(path))
    compiler = CC(aot.EXTENSION)
    compiler.output_dir, compiler.output_file, compiler.verbose = folder, filename, verbose
    compiler.target_cpu = "host"
    for (module_name, name), spec in aot.EXPORTS.items():
        kernel = getattr(importlib.import_module(f"{__package__}.{module_name}"), name)
        for dtype in aot.DTYPES:
            compiler.export(aot.export_name(module_name, name, dtype), aot.signature(spec, dtype))(
                _trampoline(kernel, len(spec)))
    compiler.export("sources_digest", "int64()")(_constant(aot.sources_digest()))
    os.makedirs(folder, exist_ok=True)
    compiler.compile()
    return path


def default_path():
    """Where the extension goes beside the kernels: ``kernels/cpu/_aot<extension suffix>``."""
    import sysconfig
    return os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        aot.EXTENSION + sysconfig.get_config_var("EXT_SUFFIX"))


def main(argv=None):
    """Command line: build the extension (at ``default_path()`` unless a path is given)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=None, help="the extension file to write")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    path = build(args.path or default_path(), verbose=args.verbose)
    print(f"built {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
