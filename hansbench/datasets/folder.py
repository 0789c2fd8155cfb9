"""Image-folder adapter: bring real data (LISA, PASCAL VOC horses, your own) into the benchmark.

Layouts: ``root/train/<class>/*.png|jpg`` and ``root/test/<class>/...``, or a single
``root/<class>/...`` split by seed. ``class_map`` (a JSON file, ``"lisa"`` for the shipped
LISA 47 -> 5 grouping of PRP Table V, or a dict) maps folder names to benchmark classes.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from hansbench.datasets._helpers import CleanData, Configurable, check_sizes, generator
from hansbench.registry import datasets

LISA_MAPPING = Path(__file__).with_name("lisa_mapping.json")
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".gif", ".tif", ".tiff", ".webp")
LAYOUT = ("root/train/<class>/*.png|jpg and root/test/<class>/*.png|jpg, "
          "or root/<class>/*.png|jpg (split by seed with test_fraction)")


class UnreadableImagesError(ValueError):
    """Some image files could not be decoded; ``paths`` lists them all."""

    def __init__(self, bad: list[tuple[Path, str]]):
        self.paths = [p for p, _ in bad]
        lines = "\n".join(f"  {p}: {err}" for p, err in bad)
        super().__init__(f"folder: {len(bad)} unreadable image file(s); fix or delete them, or pass "
                         f"on_error='skip':\n{lines}")


def load_class_map(class_map: str | Path | Mapping | None) -> dict[str, str | None] | None:
    """The folder -> benchmark class mapping from a JSON path, ``"lisa"`` or a dict."""
    if class_map is None or isinstance(class_map, Mapping):
        return None if class_map is None else dict(class_map)
    path = LISA_MAPPING if str(class_map) == "lisa" else Path(class_map).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"folder: class_map file {str(path)!r} not found; give a JSON file mapping folder "
                                f"names to benchmark classes, e.g. {{\"stopAhead\": \"stop\"}}, or 'lisa'")
    try:
        mapping = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"folder: class_map {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(mapping, dict) or not all(isinstance(v, (str, type(None))) for v in mapping.values()):
        raise ValueError(f"folder: class_map {str(path)!r} must be a JSON object of folder name -> class name "
                         "(null drops a folder)")
    return mapping


def load_image(path: Path, size: int) -> torch.Tensor:
    """One file as ``[3, size, size]`` float32 in [0, 1] (non-square images are squashed)."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB").resize((size, size), Image.BILINEAR)
        arr = np.asarray(im, dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


@datasets.register("folder")
class ImageFolder(Configurable):
    """Your own images from folders (root/train/<class>, root/test/<class>, or root/<class> split by seed).

    Options: ``root`` (required), ``class_map`` (JSON path, ``"lisa"`` or dict),
    ``on_error`` (``"skip"``: warn with the paths of unreadable files and go on;
    ``"raise"``: one error listing them all), ``test_fraction`` (single-root layout),
    ``extensions``. ``n_train``/``n_test`` images are drawn by seed from what exists.
    """

    kind = "dataset"
    defaults = {"root": None, "class_map": None, "on_error": "skip", "test_fraction": 0.25, "extensions": EXTENSIONS}

    def validate(self) -> None:
        if self.on_error not in ("skip", "raise"):
            raise ValueError(f"folder: on_error must be 'skip' or 'raise', got {self.on_error!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"folder: test_fraction must be in (0, 1), got {self.test_fraction!r}")
        if self.root is None:
            raise ValueError(f"folder: the option 'root' is required (layout: {LAYOUT})")
        self.mapping = load_class_map(self.class_map)

    # ----------------------------------------------------------------- discovery

    def _files(self, directory: Path) -> dict[str, list[Path]]:
        exts = tuple(e.lower() for e in self.extensions)
        out = {}
        for sub in sorted(p for p in directory.iterdir() if p.is_dir()):
            out[sub.name] = sorted(f for f in sub.iterdir() if f.is_file() and f.suffix.lower() in exts)
        return out

    def discover(self, seed: int) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
        """Class names and the (file, label) pools of train and test."""
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"folder: root {str(root)!r} is not a directory; expected layout: {LAYOUT}")
        if (root / "train").is_dir():
            if not (root / "test").is_dir():
                raise FileNotFoundError(f"folder: {str(root / 'train')!r} exists but {str(root / 'test')!r} does not; "
                                        f"expected layout: {LAYOUT}")
            raw = {"train": self._files(root / "train"), "test": self._files(root / "test")}
        else:
            raw = {"train": {}, "test": {}}
            for cls, files in self._files(root).items():
                perm = torch.randperm(len(files), generator=generator(seed, "folder", "split", cls)).tolist()
                n_test = round(self.test_fraction * len(files))
                raw["test"][cls] = [files[j] for j in perm[:n_test]]
                raw["train"][cls] = [files[j] for j in perm[n_test:]]
        folders = sorted(set(raw["train"]) | set(raw["test"]))
        if not any(raw["train"].values()):
            raise FileNotFoundError(f"folder: no images with extensions {', '.join(self.extensions)} under "
                                    f"{str(root)!r}; expected layout: {LAYOUT}")
        if self.mapping is None:
            to_class = {f: f for f in folders}
        else:
            unmapped = [f for f in folders if f not in self.mapping]
            if unmapped:
                warnings.warn(f"folder: class_map has no entry for folder(s) {', '.join(unmapped)}; their images "
                              "are left out (map them to a class, or to null to silence this)", stacklevel=3)
            to_class = {f: self.mapping[f] for f in folders if self.mapping.get(f) is not None}
        class_names = sorted(set(to_class.values()))
        if not class_names:
            raise ValueError(f"folder: no folder under {str(root)!r} maps to a class; folders: {', '.join(folders)}")
        index = {c: i for i, c in enumerate(class_names)}
        pools = {part: [(f, index[to_class[cls]]) for cls in sorted(raw[part]) if cls in to_class
                        for f in raw[part][cls]] for part in raw}
        return class_names, pools

    # ----------------------------------------------------------------- loading

    def load(self, image_size: int, n_train: int, n_test: int, seed: int) -> CleanData:
        check_sizes(image_size, n_train, n_test, seed)
        class_names, pools = self.discover(seed)
        bad: list[tuple[Path, str]] = []
        parts = {}
        for part, n in (("train", n_train), ("test", n_test)):
            pool = pools[part]
            order = torch.randperm(len(pool), generator=generator(seed, "folder", part)).tolist()
            images, labels = [], []
            for j in order:  # read in seeded order until n readable images are found
                if len(images) == n:
                    break
                path, label = pool[j]
                try:
                    images.append(load_image(path, image_size))
                    labels.append(label)
                except Exception as exc:  # PIL raises many types for corrupt files
                    bad.append((path, f"{type(exc).__name__}: {exc}"))
            if len(images) < n:
                warnings.warn(f"folder: {n} {part} images requested, only {len(images)} readable ones exist "
                              f"under {self.root!r}; using {len(images)}", stacklevel=2)
            parts[part] = (images, labels)
        if bad and self.on_error == "raise":
            raise UnreadableImagesError(bad)
        for part, (images, labels) in parts.items():
            if not images:
                raise ValueError(f"folder: no readable {part} images under {str(self.root)!r} (layout: {LAYOUT})")
            parts[part] = (torch.stack(images), torch.tensor(labels, dtype=torch.int64))
        if bad:
            warnings.warn(f"folder: skipped {len(bad)} unreadable image file(s): "
                          + "; ".join(f"{p} ({err})" for p, err in bad), stacklevel=2)
        return CleanData(parts["train"][0], parts["train"][1], parts["test"][0], parts["test"][1], class_names)
