"""Finds the AOT configs that each bigkernels.triton.* module declares."""
import importlib
import pkgutil

REQUIRED = ("name", "kernel", "signature", "constexprs")
# `aligned`: arguments the launch specialises as divisible by 16 (Triton's
# "D" specialization: 16-byte-aligned pointers, ints that are multiples of 16);
# None means every pointer, as for freshly allocated torch tensors. It changes
# the code (128-bit vector loads), so the table must match what launches.
OPTIONAL = {"num_warps": 4, "num_stages": 3, "pinned": False, "aligned": None}


def aligned_args(config):
    aligned = config.get("aligned")
    return list(aligned) if aligned is not None else [k for k, v in config["signature"].items() if v.startswith("*")]


def validate(entry, module):
    """A config as a dict with every field; ValueError naming the module and field."""
    if not isinstance(entry, dict):
        raise ValueError(f"{module}.AOT_CONFIGS: each entry must be a dict, got {type(entry).__name__}")
    missing = [k for k in REQUIRED if k not in entry]
    unknown = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
    if missing or unknown:
        raise ValueError(f"{module}.AOT_CONFIGS[{entry.get('name', '?')}]: missing {missing}, unknown {unknown}")
    sig = entry["signature"]
    absent = [k for k in entry["constexprs"] if sig.get(k) != "constexpr"]
    if absent:
        raise ValueError(f"{module}.AOT_CONFIGS[{entry['name']}]: constexprs {absent} are not 'constexpr' "
                         "in the signature")
    config = {**OPTIONAL, **entry, "module": module}
    config["aligned"] = aligned_args(config)
    unknown_args = [k for k in config["aligned"] if k not in sig or sig[k] == "constexpr"]
    if unknown_args:
        raise ValueError(f"{module}.AOT_CONFIGS[{entry['name']}]: aligned names non-runtime arguments {unknown_args}")
    return config


def discover(*, pinned_only=False, package="bigkernels.triton"):
    """Every declared config, in module order. Importing a module that fails is
    an error (a kernel that does not import would not compile either)."""
    pkg = importlib.import_module(package)
    configs, names = [], set()
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package}.{info.name}")
        for entry in getattr(module, "AOT_CONFIGS", ()):
            config = validate(entry, module.__name__)
            if config["name"] in names:
                raise ValueError(f"{module.__name__}: AOT config name {config['name']!r} is declared twice")
            names.add(config["name"])
            if config["pinned"] or not pinned_only:
                configs.append(config)
    return configs
