"""matplotlib for the CLI's plots, optional: without it the command says so and skips the plot."""
from __future__ import annotations

import sys


def pyplot_or_none(what: str):
    """matplotlib.pyplot with a file-only backend, or None after a note on stderr naming `what`."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"rnnkit: matplotlib is not installed; skipping the {what} (pip install matplotlib)",
              file=sys.stderr)
        return None
    return plt


def save_figure(plt, fig, path) -> bool:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
