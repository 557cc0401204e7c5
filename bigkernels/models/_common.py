"""One design for every model: build it from torch modules, then, with
kernels=True, let bigkernels.swap() put our modules in. The two variants thus
have the same architecture and the same state_dict keys by construction."""


def finish(model, kernels):
    if not isinstance(kernels, bool):
        raise TypeError(f"kernels must be a bool, got {type(kernels).__name__}")
    model.swap_report = None
    if kernels:
        from ..swap import swap

        model.swap_report = swap(model)
    return model


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value
