"""Read a folder with one sub-folder of images per class: `root/<class name>/*.png`.

Class names are the sub-folder names in sorted order, so label i is the i-th folder.
Every image is converted to RGB or grayscale to match the channel count and resized to
the model's height and width.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...config import ModelConfig
from ...errors import DatasetError
from ..interface import Examples
from .layout import image_shape

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def load_image_folder(root: Path, model: ModelConfig) -> Examples:
    """All images under `root`, as uint8 (N, C, H, W) with labels from the folder names."""
    from PIL import Image, UnidentifiedImageError

    channels, height, width = image_shape(model)
    if channels not in (1, 3):
        raise DatasetError(
            f"image folders hold grayscale or RGB images; model.input_shape has "
            f"{channels} channels: use 1 or 3, or store the data as .npz"
        )
    if not root.is_dir():
        raise DatasetError(
            f"image folder {root} not found: expected a directory with one sub-folder of "
            "images per class (set data.path)"
        )
    class_dirs = sorted(path for path in root.iterdir() if path.is_dir())
    if len(class_dirs) != model.num_classes:
        raise DatasetError(
            f"image folder {root} has {len(class_dirs)} class sub-folder(s), but "
            f"model.num_classes is {model.num_classes}: expected one sub-folder per class"
        )
    mode = "RGB" if channels == 3 else "L"
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DatasetError(
                f"class folder {class_dir} has no images: every class needs at least one "
                f"file ending in {', '.join(IMAGE_SUFFIXES)}"
            )
        for file in files:
            try:
                with Image.open(file) as image:
                    resized = image.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
                    pixels = np.asarray(resized, dtype=np.uint8)
            except (OSError, UnidentifiedImageError) as error:
                raise DatasetError(f"cannot read image {file}: {error}") from error
            images.append(pixels[None] if channels == 1 else pixels.transpose(2, 0, 1))
            labels.append(label)
    return Examples(
        x=np.stack(images),
        y=np.array(labels, dtype=np.int64),
        class_names=tuple(path.name for path in class_dirs),
    )
