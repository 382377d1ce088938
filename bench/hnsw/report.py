"""Tables and plots of the HNSW benchmark."""

import os


def fmt(x, digits=1):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.{digits}f}"


def markdown_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    return "\n".join(out)


def plot(path, title, series):
    """series: list of (label, [(recall, qps), ...]). Writes a PNG: recall on
    x, queries/s (log scale) on y."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    markers = "osd^vx*"
    for i, (label, points) in enumerate(series):
        points = [p for p in points if p[0] is not None and p[1]]
        if not points:
            continue
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker=markers[i % len(markers)], label=label)
    ax.set_xlabel("recall@10")
    ax.set_ylabel("queries per second (log)")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
