"""Training data: datasets of `examples.make_example` rows, read from `save_to_disk` folders.

Rows are TRL's conversational prompt-completion format plus an `images` column (one composite per row) and the
label columns, so both trainers read them as they are. The only conversion: an `images` column stored as raw
nested pixel lists (what `Dataset.from_list` makes of numpy arrays) is cast to the `Image` feature, which the
collators decode to PIL.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Optional

from sole_r1_model.training.recipe import DataRecipe

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("images", "prompt", "completion", "progress")


def images_feature():
    """The feature of the `images` column: a list of images (PNG-encoded on disk, PIL when read)."""
    from datasets import Image, List

    return List(Image())


def to_dataset(rows: Iterable[dict]):
    """A `datasets.Dataset` of `make_example` rows with `images` stored as images (call `save_to_disk` on it)."""
    from datasets import Dataset
    from PIL import Image

    # PIL images are stored with the Image feature directly; raw arrays would become nested int lists, and
    # casting those afterwards takes seconds per composite.
    rows = [{**row, "images": [image if isinstance(image, Image.Image) else Image.fromarray(image)
                               for image in row["images"]]} for row in rows]
    return Dataset.from_list(rows)


def _load_one(path: Path):
    """One dataset folder (a Dataset, or a DatasetDict whose "train" split is used)."""
    from datasets import DatasetDict, load_from_disk

    if not path.is_dir():
        raise FileNotFoundError(f"dataset folder {path} not found; write one with `sole-r1 synth` "
                                "(datasets.save_to_disk)")
    dataset = load_from_disk(str(path))
    if isinstance(dataset, DatasetDict):
        if "train" not in dataset:
            raise ValueError(f"{path} holds splits {sorted(dataset)}; expected a Dataset or a 'train' split")
        dataset = dataset["train"]
    missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}; rows must come from sole_r1_model.examples.make_example")
    return dataset


def load_examples(paths: list, max_examples: Optional[int] = None, seed: int = 0):
    """Concatenate the datasets at `paths`; with `max_examples`, a seeded random subset of that size."""
    from datasets import Image, concatenate_datasets

    if not paths:
        raise ValueError("no training data: set data.train in the recipe or pass --data DIR")
    parts = []
    for path in paths:
        dataset = _load_one(Path(os.fspath(path)).expanduser())
        feature = dataset.features["images"]
        if not isinstance(getattr(feature, "feature", None), Image):  # raw pixel lists -> images, once (slow)
            log.warning("%s stores images as raw pixel lists; converting (write datasets with "
                        "sole_r1_model.training.data.to_dataset to skip this)", path)
            dataset = dataset.cast_column("images", images_feature())
        parts.append(dataset)
    dataset = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    if max_examples is not None and max_examples < len(dataset):
        dataset = dataset.shuffle(seed=seed).select(range(max_examples))
    return dataset


def load_splits(data: DataRecipe, seed: int = 0):
    """(train, eval or None) datasets as the recipe's data section describes them."""
    train = load_examples(data.train, data.max_examples, seed)
    if data.eval:
        return train, load_examples(data.eval, None, seed)
    if data.eval_fraction > 0:
        held_out = max(1, int(round(len(train) * data.eval_fraction)))
        if held_out >= len(train):
            raise ValueError(f"data.eval_fraction {data.eval_fraction} leaves no training rows of {len(train)}")
        split = train.train_test_split(test_size=held_out, seed=seed)
        return split["train"], split["test"]
    return train, None
