"""Labels of the synthetic datasets, shared by every family's generator."""

from __future__ import annotations

import numpy as np


def balanced_labels(count: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """`count` labels, every class as often as possible, in a seeded order."""
    labels = np.arange(count) % num_classes
    rng.shuffle(labels)
    return labels


def flip_labels(
    labels: np.ndarray, fraction: float, num_classes: int, rng: np.random.Generator
) -> np.ndarray:
    """Move `fraction` of the labels to a different, random class (label noise, so that
    accuracy stays below 1.0 the way it does on real data)."""
    flipped = labels.copy()
    count = int(round(fraction * len(labels)))
    chosen = rng.choice(len(labels), size=count, replace=False)
    flipped[chosen] = (labels[chosen] + rng.integers(1, num_classes, size=count)) % num_classes
    return flipped.astype(np.int64)


def class_names(num_classes: int) -> tuple[str, ...]:
    return tuple(f"class_{index}" for index in range(num_classes))


def sorted_class_names(found: set[str]) -> tuple[str, ...]:
    """The class names of a labelled file, in label order: sorted as numbers when every
    label is an integer ("2" before "10"), else alphabetically."""
    if all(name.lstrip("-").isdigit() for name in found):
        return tuple(sorted(found, key=int))
    return tuple(sorted(found))
