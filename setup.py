"""Builds bigkernels._C: the C++ CPU kernels always, the CUDA kernels when torch
has CUDA and nvcc is found (BIGKERNELS_CUDA=auto|0|1 overrides).

Sources are found by glob, so a kernel family adds files, never edits here:
  csrc/cpu/**/*.cpp, csrc/torch/*_cpu.cpp           (always)
  csrc/cuda/**/*.cu, csrc/torch/*_cuda.cpp          (CUDA builds)
csrc/torch/sim/ is the emulator's glue, built on demand by the tests;
csrc/cuda/testing/ holds test kernels (emulator checks, seeded bugs), kept
out of _C but compiled by CMake so nvcc still checks them.
"""
import glob
import os

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def _want_cuda():
    import torch
    from torch.utils.cpp_extension import CUDA_HOME

    flag = os.environ.get("BIGKERNELS_CUDA", "auto").lower()
    possible = torch.version.cuda is not None and CUDA_HOME is not None
    if flag in ("0", "false", "off"):
        return False
    if flag in ("1", "true", "on"):
        if not possible:
            raise RuntimeError(
                "BIGKERNELS_CUDA=1 but torch has no CUDA (torch.version.cuda=%r) or nvcc was not found "
                "(CUDA_HOME=%r)" % (torch.version.cuda, CUDA_HOME)
            )
        return True
    return possible


def _default_arch_list():
    # cpp_extension crashes looking for a GPU when no arch list is given and
    # none is visible: default to Ampere and Hopper (sm_90a for wgmma).
    import torch

    if "TORCH_CUDA_ARCH_LIST" not in os.environ and not torch.cuda.is_available():
        os.environ["TORCH_CUDA_ARCH_LIST"] = "8.0;9.0a"


def _sources(patterns, exclude=(os.path.join("csrc", "cuda", "testing"),)):
    out = []
    for pattern in patterns:
        out += sorted(glob.glob(os.path.join("csrc", pattern), recursive=True))
    return [s for s in out if not s.startswith(exclude)]


def _write_build_info(with_cuda):
    import torch

    info = {
        "torch_version": torch.__version__,
        "cuda_built": with_cuda,
        "cuda_version": torch.version.cuda if with_cuda else None,
        "cuda_arch_list": os.environ.get("TORCH_CUDA_ARCH_LIST") if with_cuda else None,
    }
    path = os.path.join(ROOT, "bigkernels", "_build_info.py")
    with open(path, "w") as f:
        f.write("# Written by setup.py at build time.\nBUILD_INFO = %r\n" % (info,))


def _extensions():
    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    with_cuda = _want_cuda()
    _write_build_info(with_cuda)
    cxx = ["-O3", "-std=c++20", "-fopenmp", "-Wno-unknown-pragmas"]
    sources = _sources(["torch/module.cpp", "torch/*_cpu.cpp", "cpu/**/*.cpp"])
    kwargs = dict(include_dirs=[os.path.join(ROOT, "csrc")], extra_link_args=["-fopenmp"])
    if with_cuda:
        _default_arch_list()
        sources += _sources(["torch/*_cuda.cpp", "cuda/**/*.cu"])
        nvcc = ["-O3", "-std=c++17", "--expt-relaxed-constexpr", "-lineinfo"]
        threads = os.environ.get("NVCC_THREADS", "2")
        nvcc += ["--threads", threads]
        return [CUDAExtension("bigkernels._C", sources, extra_compile_args={"cxx": cxx, "nvcc": nvcc}, **kwargs)]
    return [CppExtension("bigkernels._C", sources, extra_compile_args={"cxx": cxx}, **kwargs)]


def _build_ext():
    from torch.utils.cpp_extension import BuildExtension

    return BuildExtension.with_options(use_ninja=True)


setup(
    packages=find_packages(include=["bigkernels", "bigkernels.*"]),
    ext_modules=_extensions(),
    cmdclass={"build_ext": _build_ext()},
)
