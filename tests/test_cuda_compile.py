"""Every CUDA source and elementwise operation compiles to a cubin for sm_90, without a GPU.

NVRTC comes from the ``cuda-check`` extra (cupy-cuda13x with nvidia-cuda-nvrtc and
nvidia-cuda-runtime). Where it is missing these tests skip, unless ``NNENGINE_REQUIRE_NVRTC=1``
(CI sets it) makes a missing compiler a failure.
"""
import os
import re

import pytest

from nnengine.kernels.cuda import elementwise, launch, loader


def _nvrtc_missing():
    try:
        from cupy_backends.cuda.libs import nvrtc
        nvrtc.getVersion()
    except Exception as error:  # ImportError, or the NVRTC library not found
        return str(error) or type(error).__name__
    return None


_MISSING = _nvrtc_missing()
if _MISSING and os.environ.get("NNENGINE_REQUIRE_NVRTC") == "1":
    raise RuntimeError(f"NNENGINE_REQUIRE_NVRTC=1 but NVRTC is unavailable: {_MISSING}; "
                       'install it with pip install -e ".[cuda-check]"')
needs_nvrtc = pytest.mark.skipif(_MISSING is not None, reason=f"NVRTC unavailable: {_MISSING}")

ELF_MAGIC = b"\x7fELF"


def test_every_source_in_the_directory_is_listed_for_compilation():
    on_disk = {path.name for path in loader.SOURCE_DIR.glob("*.cu")}
    assert on_disk == set(loader.SOURCES)


@needs_nvrtc
@pytest.mark.parametrize("source", sorted(loader.SOURCES))
def test_source_compiles_to_a_cubin_for_sm_90(source):
    cubin = loader.compile_to_cubin(source, arch="sm_90")
    assert cubin[:4] == ELF_MAGIC
    text = loader.expand(loader.source_path(source))
    for kernel in loader.kernel_names(text):          # every kernel is in the binary
        assert kernel.encode() in cubin


@needs_nvrtc
@pytest.mark.parametrize("c_type", loader.ALL_TYPES)
def test_every_elementwise_operation_compiles_with_cupys_headers(c_type):
    source = elementwise.check_source(c_type)
    cubin = loader.nvrtc_compile(source, f"elementwise_{c_type.replace(' ', '_')}.cu")
    assert cubin[:4] == ELF_MAGIC
    expected = [name for name in elementwise.operations() if c_type in loader.FLOAT_TYPES
                or name in elementwise.INTEGER_OK]
    for name in expected:
        assert f"check_{name}_{c_type.replace(' ', '_')}".encode() in cubin


@needs_nvrtc
def test_a_compile_error_names_the_file_and_line(tmp_path):
    broken = tmp_path / "broken.cu"
    broken.write_text('#include "helper.cuh"\n\ntemplate <typename T>\n'
                      "__global__ void k(T* x) { x[0] = undefined_name; }\n")
    (tmp_path / "helper.cuh").write_text("#pragma once\n__device__ int helper() { return 1; }\n")
    with pytest.raises(loader.CudaCompileError, match=r"broken\.cu\(4\): error: identifier \"undefined_name\""):
        loader.compile_to_cubin(broken)


@needs_nvrtc
def test_an_error_inside_an_included_header_names_the_header(tmp_path):
    (tmp_path / "helper.cuh").write_text("#pragma once\n\n__device__ int helper() { return missing; }\n")
    source = tmp_path / "uses_helper.cu"
    source.write_text('#include "helper.cuh"\ntemplate <typename T> __global__ void k(T* x) { x[0] = helper(); }\n')
    with pytest.raises(loader.CudaCompileError, match=r"helper\.cuh\(3\): error"):
        loader.compile_to_cubin(source)


def test_expand_inlines_each_header_once_and_keeps_line_numbers(tmp_path):
    (tmp_path / "a.cuh").write_text("#pragma once\nint a;\n")
    (tmp_path / "b.cuh").write_text('#include "a.cuh"\nint b;\n')
    main = tmp_path / "main.cu"
    main.write_text('#include "a.cuh"\n#include "b.cuh"\nint c;\n')
    text = loader.expand(main)
    assert text.count("int a;") == 1 and "#pragma once" not in text
    lines = text.splitlines()
    assert lines[lines.index("int c;") - 1].startswith("#line 3 ")


def test_kernel_names_are_found_in_every_source():
    gemm = loader.kernel_names(loader.source_path("gemm.cu").read_text())
    assert gemm == ["gemm_tiled"]           # declared with __launch_bounds__
    nn = loader.kernel_names(loader.source_path("nn.cu").read_text())
    assert {"bias_activation", "activation_grad_bias", "softmax_rows", "softmax_grad_rows",
            "softmax_xent_dense", "softmax_xent_index"} == set(nn)


def _define(text, name):
    return int(re.search(rf"#define {name} \(?(\w+)", text).group(1))


def test_launch_constants_match_the_cuda_headers():
    common = (loader.SOURCE_DIR / "common.cuh").read_text()
    gemm = (loader.SOURCE_DIR / "gemm.cu").read_text()
    assert _define(common, "WARP_SIZE") == launch.WARP_SIZE
    assert _define(common, "WARPS_PER_BLOCK") == launch.WARPS_PER_BLOCK
    assert _define(gemm, "TILE") == launch.GEMM_TILE
    assert _define(gemm, "THREADS_SIDE") == launch.GEMM_THREADS_SIDE
    reduce_source = (loader.SOURCE_DIR / "reduce.cu").read_text()
    assert "warp_results[1024 / WARP_SIZE]" in reduce_source and launch.REDUCE_BLOCK <= 1024
    from nnengine.kernels.cuda import optim
    optim_source = (loader.SOURCE_DIR / "optim.cu").read_text()
    assert _define(optim_source, "GROUP_SIZE") == optim.GROUP_SIZE
    assert _define(optim_source, "GROUP_ARRAYS") == optim.GROUP_ARRAYS
    assert optim.TENSOR_GROUP.itemsize == 8 * (optim.GROUP_ARRAYS * optim.GROUP_SIZE + optim.GROUP_SIZE + 2)
    assert optim.TENSOR_GROUP.itemsize <= 4096 - 64       # a kernel's parameters: at most 4 KB in all


def test_activation_codes_reach_every_cuda_source_from_the_one_table():
    from nnengine.kernels.activation_codes import ACTIVATION_CODES
    for source in loader.SOURCES:
        text = loader.expand(loader.source_path(source))
        for name, code in ACTIVATION_CODES.items():
            assert _define(text, f"ACT_{name.upper()}") == code
    # and no header defines them a second time
    for header in loader.SOURCE_DIR.glob("*.cu*"):
        assert "#define ACT_" not in header.read_text(), header.name


def test_reduction_codes_match_the_cuda_header():
    from nnengine.kernels.cuda import reduce
    common = (loader.SOURCE_DIR / "common.cuh").read_text()
    for name, code in reduce.OPS.items():
        assert _define(common, f"OP_{name.upper()}") == code


def test_gpu_tests_are_collected_and_property_tests_skip_where_hypothesis_is_missing(tmp_path):
    """The H200 image may lack hypothesis: the GPU and compile tests must still run there."""
    import subprocess
    import sys
    blocker = tmp_path / "hypothesis"
    blocker.mkdir()
    (blocker / "__init__.py").write_text('raise ModuleNotFoundError("No module named hypothesis", name="hypothesis")\n')
    tests = os.path.dirname(__file__)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--no-cov", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q", "-rs",
         "--collect-only",
         os.path.join(tests, "test_cuda_gpu.py"), os.path.join(tests, "test_cuda_compile.py"),
         os.path.join(tests, "test_backends.py"), os.path.join(tests, "test_cuda_backend.py")],
        capture_output=True, text=True, env=env, cwd=tests, timeout=300)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    collected = dict(re.findall(r"^tests/(test_\w+\.py): (\d+)$", report, re.M))
    assert int(collected.get("test_cuda_gpu.py", 0)) > 20 and int(collected.get("test_cuda_compile.py", 0)) > 5, report
    assert "test_backends.py" not in collected and "test_cuda_backend.py" not in collected, report
    assert report.count("could not import 'hypothesis'") == 2, report         # skipped, with the reason
