"""`python -m bigkernels info`: versions, build, device, backends, and the
op x backend availability table."""
import platform

import torch

from . import __version__, _native, backends


def versions():
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    gpu = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        gpu = {"name": props.name, "capability": f"{props.major}.{props.minor}", "count": torch.cuda.device_count()}
    return {
        "bigkernels": __version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "triton": triton_version,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_isa": _native.cpu_isa(),
        "gpu": gpu,
    }


def report():
    return {"versions": versions(), "build": _native.build_info(), "native_error": _native.error(),
            **backends.available()}


def _mark(reason):
    return "yes" if reason is None else "-"


def render(info):
    lines = ["bigkernels " + info["versions"]["bigkernels"]]
    for key, value in info["versions"].items():
        if key != "bigkernels":
            lines.append(f"  {key:<10} {value}")
    build = info["build"] or {}
    lines.append(f"  build      _C {'loaded' if info['native_error'] is None else 'NOT loaded: ' + info['native_error']}"
                 f"; torch {build.get('torch_version')}, CUDA kernels {'built' if build.get('cuda_built') else 'not built'}"
                 f"{', arch ' + build['cuda_arch_list'] if build.get('cuda_arch_list') else ''}")
    lines.append(f"  selection  {info['forced']}")
    lines.append("")
    lines.append("backends (per device: yes, or why not)")
    for name, per_device in info["backends"].items():
        lines.append(f"  {name:<10} " + "; ".join(f"{d}: {'yes' if r is None else r}" for d, r in per_device.items()))
    lines.append("")
    names = list(info["backends"])
    devices = list(next(iter(info["backends"].values())))
    for device in devices:
        lines.append(f"ops x backends on {device}")
        lines.append("  " + f"{'op':<28}" + "".join(f"{n:>10}" for n in names))
        for op, per_backend in info["ops"].items():
            cells = [_mark(per_backend[n][device]) if n in per_backend else "" for n in names]
            lines.append("  " + f"{op:<28}" + "".join(f"{c:>10}" for c in cells))
    return "\n".join(lines)
