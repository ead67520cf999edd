"""PNG plots of a training run: loss and accuracy curves, validation confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Above this many classes the numbers in the confusion matrix cells are unreadable.
MAX_ANNOTATED_CLASSES = 20


def write_training_plots(
    history: Sequence[dict[str, Any]],
    confusion: np.ndarray,
    class_names: Sequence[str],
    out_dir: Path,
) -> list[Path]:
    """Write loss.png, accuracy.png and confusion_matrix.png into `out_dir`."""
    import matplotlib

    # Agg renders to files without a display (CI machines, containers).
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    out_dir.mkdir(parents=True, exist_ok=True)
    epochs = [row["epoch"] for row in history]
    written = []
    for metric, title in (("loss", "Cross-entropy loss"), ("accuracy", "Accuracy")):
        figure, axes = plt.subplots(figsize=(6, 4))
        for split in ("train", "validation"):
            axes.plot(
                epochs, [row[f"{split}_{metric}"] for row in history], marker="o", label=split
            )
        axes.set(title=title, xlabel="epoch", ylabel=metric)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend()
        written.append(_save(figure, out_dir / f"{metric}.png", plt))

    size = max(4.0, 0.5 * len(class_names) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(confusion, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046)
    axes.set(title="Confusion matrix (validation)", xlabel="predicted", ylabel="true")
    if len(class_names) <= MAX_ANNOTATED_CLASSES:
        ticks = np.arange(len(class_names))
        axes.set_xticks(ticks, labels=class_names, rotation=45, ha="right")
        axes.set_yticks(ticks, labels=class_names)
        threshold = confusion.max() / 2 if confusion.size else 0
        for (row, col), count in np.ndenumerate(confusion):
            colour = "white" if count > threshold else "black"
            axes.text(col, row, str(count), ha="center", va="center", color=colour, fontsize=8)
    written.append(_save(figure, out_dir / "confusion_matrix.png", plt))
    return written


def _save(figure: Any, path: Path, plt: Any) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
