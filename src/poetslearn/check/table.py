"""Every image of a data set in one table, the splits one after another (train, validation,
test): the rows every finder and every output of `check` refers to."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from poetslearn.data.sources import SPLITS, Dataset, Split


@dataclass
class ImageTable:
    dataset: Dataset
    splits: dict[str, Split]  # the readable images only
    vectors: np.ndarray  # [N, dim] bottlenecks, rows in split order
    split_of: list[str]
    index_in_split: list[int]

    @classmethod
    def pooled(
        cls, dataset: Dataset, splits: dict[str, Split], vectors: dict[str, np.ndarray]
    ) -> ImageTable:
        split_of = [s for s in SPLITS for _ in range(len(splits[s]))]
        index_in_split = [i for s in SPLITS for i in range(len(splits[s]))]
        pooled = np.concatenate([vectors[s] for s in SPLITS]) if split_of else np.zeros((0, 1))
        return cls(dataset, splits, pooled, split_of, index_in_split)

    def __len__(self) -> int:
        return len(self.split_of)

    def row_of(self, split: str, index: int) -> int:
        return sum(len(self.splits[s]) for s in SPLITS[: SPLITS.index(split)]) + index

    @cached_property
    def labels(self) -> np.ndarray:
        """[N] class indices, or [N, labels] 0/1 targets for multi-label data."""
        return np.concatenate([self.splits[s].labels for s in SPLITS])

    @cached_property
    def keys(self) -> list[bytes]:
        return [key for s in SPLITS for key in self.splits[s].images.keys()]

    def name(self, row: int) -> str:
        return self.splits[self.split_of[row]].images.names[self.index_in_split[row]]

    def path(self, row: int) -> Path | None:
        """The image's file, or None for images held in memory (CIFAR-10)."""
        return self.splits[self.split_of[row]].images.file_path(self.index_in_split[row])

    def label_text(self, row: int) -> str:
        value = self.splits[self.split_of[row]].labels[self.index_in_split[row]]
        names = self.dataset.class_names
        if self.dataset.multi_label:
            return ";".join(names[i] for i in np.flatnonzero(value))
        return names[int(value)]

    def read_original(self, row: int, min_side: int) -> np.ndarray:
        """[H, W, 3] uint8 pixels, for pictures of the image."""
        images = self.splits[self.split_of[row]].images
        return images.read_original(self.index_in_split[row], min_side)
