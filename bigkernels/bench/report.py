"""Tables and plots of benchmark records."""
import re


def slug(device_type, device):
    return device_type + "-" + re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-")[:48]


def _fmt(value, spec):
    return "" if value is None else format(value, spec)


def table(records):
    if not records:
        return "(no results)"
    head = f"{'family':<10} {'case':<34} {'impl':<16} {'time ms':>9} {'vs base':>8} {'TFLOP/s':>8} {'GB/s':>7} {'%peak':>6}"
    lines = [head, "-" * len(head)]
    for r in records:
        lines.append(f"{r['family']:<10} {r['case'][:34]:<34} {r['implementation'][:16]:<16} "
                     f"{r['time_s'] * 1e3:>9.3f} {r['speedup']:>7.2f}x {_fmt(r['tflops'], '8.3f'):>8} "
                     f"{_fmt(r['gbps'], '7.1f'):>7} {_fmt(r.get('pct_of_peak'), '6.1f'):>6}")
    return "\n".join(lines)


def plot(records, path):
    """A bar chart of each non-baseline implementation's speedup; None if
    matplotlib is missing (the `bench` extra installs it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [r for r in records if r["implementation"] != r["baseline"]]
    if not rows:
        return None
    labels = [f"{r['family']}: {r['case']} [{r['implementation']}]" for r in rows]
    values = [r["speedup"] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(rows) + 1.5))
    ax.barh(range(len(rows)), values, color=["tab:green" if v >= 1 else "tab:red" for v in values])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("speedup over the baseline (same run)")
    ax.set_title(f"bigkernels on {rows[0]['device']} ({rows[0]['date'][:10]}, {rows[0]['commit']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
