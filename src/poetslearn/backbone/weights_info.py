"""What a backbone's weights are (`WeightsInfo`) and the shape of the functions that find them:
shared by every place weights come from (Keras files, codelab graphs, TF Hub)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from poetslearn.backbone.architectures import Architecture


@dataclass
class WeightsInfo:
    """Which weights a backbone carries, for the output, the metadata file and cache keys."""

    kind: str  # "imagenet", "random" or "file"
    description: str
    path: str | None = None
    sha256: str | None = None
    looked_in: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "description": self.description,
            "path": self.path,
            "sha256": self.sha256,
        }


# A finder looks for ImageNet weights for an architecture in one place. It returns a function
# that loads them into a freshly built backbone plus a description, or None if it has nothing;
# it appends what it looked at to `looked_in` so the final error can say where we searched.
Loader = Callable[[object], None]
Finder = Callable[[Architecture, Path, list[str]], tuple[Loader, WeightsInfo] | None]
