"""The 1,797 8x8 handwritten digits bundled with scikit-learn, as tensors, in
the layout each model family reads."""
import torch

LAYOUTS = ("image", "rows", "patches")


def load_digits(layout="image", *, test_fraction=0.2, seed=0, patch=2):
    """Returns (x_train, y_train, x_test, y_test).

    layout "image": (N, 1, 8, 8); "rows": (N, 8, 8), the image's rows as a
    sequence of 8 steps (LSTM); "patches": (N, (8/patch)^2, patch^2), ViT-style
    non-overlapping patches in raster order (transformer). Pixels are scaled
    from 0..16 to 0..1. The split is a fixed permutation (seed), so every
    model and every DDP rank sees the same test set (360 images at 0.2)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not isinstance(patch, int) or patch <= 0 or 8 % patch:
        raise ValueError(f"patch must divide 8, got {patch!r}")
    try:
        from sklearn.datasets import load_digits as sk_load
    except ImportError as exc:
        raise ImportError("the digits need scikit-learn: pip install 'bigkernels[data]' "
                          "(or pip install scikit-learn)") from exc
    bunch = sk_load()
    x = torch.tensor(bunch.images, dtype=torch.float32) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    if layout == "image":
        x = x.unsqueeze(1)
    elif layout == "patches":
        n, g = x.shape[0], 8 // patch
        x = x.view(n, g, patch, g, patch).permute(0, 1, 3, 2, 4).reshape(n, g * g, patch * patch)
    n_test = int(round(len(y) * test_fraction))
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test]
