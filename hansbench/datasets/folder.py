"""Image-folder adapter: bring real data (LISA, PASCAL VOC horses, your own) into the benchmark.

Layouts: ``root/train/<class>/*.png|jpg`` and ``root/test/<class>/...``, or a single
``root/<class>/...`` split by seed. ``class_map`` (a JSON file, ``"lisa"`` for the shipped
LISA 47 -> 5 grouping of PRP Table V, or a dict) maps folder names to benchmark classes.
"""

from __future__ import annotations

import json
import logging
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
# One clean line per problem (no source line, as warnings.warn would print); tests read it with caplog.
log = logging.getLogger("hansbench.datasets.folder")


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


def _describe(exc: Exception, path: Path) -> str:
    """``Type: message`` on one line, without the path that the listing already shows (PIL repeats it)."""
    msg = str(exc).replace(repr(str(path)), "").replace(str(path), "").strip(" :")
    return " ".join(f"{type(exc).__name__}: {msg}".split()).rstrip(": ")


def probe_image(path: Path) -> None:
    """Raise unless ``path`` looks like a readable image: header parsed and ``verify()`` passed.

    Cheaper than decoding (no pixels are converted or resized); PNG chunks are checked
    to the end, so zero-byte, truncated and non-image files are found without loading them.
    """
    from PIL import Image

    with Image.open(path) as im:
        im.verify()


@datasets.register("folder")
class ImageFolder(Configurable):
    """Your own images from folders (root/train/<class>, root/test/<class>, or root/<class> split by seed).

    Options: ``root`` (required), ``class_map`` (JSON path, ``"lisa"`` or dict),
    ``on_error`` (``"skip"``: warn with the paths of unreadable files and go on;
    ``"raise"``: one error listing them all), ``test_fraction`` (single-root layout),
    ``extensions``. ``n_train``/``n_test`` images are drawn by seed from what exists.
    """

    kind = "dataset"
    version = "2"  # 2: single-root layout split per class with >= 1 image on each side
    def __init__(self, root: str | None = None, class_map: str | dict | None = None, on_error: str = "skip",
                 test_fraction: float = 0.25, extensions: tuple[str, ...] = EXTENSIONS):
        self.root, self.class_map, self.on_error = root, class_map, on_error
        self.test_fraction, self.extensions = test_fraction, extensions
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

    def _root(self) -> Path:
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"folder: root {str(root)!r} is not a directory; expected layout: {LAYOUT}")
        if (root / "train").is_dir() and not (root / "test").is_dir():
            raise FileNotFoundError(f"folder: {str(root / 'train')!r} exists but {str(root / 'test')!r} does not; "
                                    f"expected layout: {LAYOUT}")
        return root

    def _to_class(self, root: Path, folders: list[str], *, quiet: bool = False) -> dict[str, str]:
        """Folder name -> benchmark class, after ``class_map``; warns about unmapped folders."""
        if self.mapping is None:
            return {f: f for f in folders}
        unmapped = [f for f in folders if f not in self.mapping]
        if unmapped and not quiet:
            log.warning("folder: class_map has no entry for folder(s) %s; their images are left out "
                        "(map them to a class, or to null to silence this)", ", ".join(unmapped))
        to_class = {f: self.mapping[f] for f in folders if self.mapping.get(f) is not None}
        if not to_class:
            raise ValueError(f"folder: no folder under {str(root)!r} maps to a class; folders: {', '.join(folders)}")
        return to_class

    def _check_classes(self, root: Path, class_names: list[str]) -> None:
        if len(class_names) < 2:
            raise ValueError(f"folder: only one class ({class_names[0]!r}) under {str(root)!r}; a classifier needs at "
                             f"least 2 class folders (layout: {LAYOUT})")

    def class_names(self) -> list[str]:
        """The benchmark classes (class folders after ``class_map``), sorted; no image is read.

        Raises the same clear errors as :meth:`load` for a missing root, a wrong layout,
        fewer than 2 classes and classes too small to have an image in train and in test.
        """
        return self.discover(0, quiet=True)[0]

    def discover(self, seed: int, *, quiet: bool = False) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
        """Class names and the (file, label) pools of train and test."""
        root = self._root()
        split_layout = (root / "train").is_dir()
        if split_layout:
            raw = {"train": self._files(root / "train"), "test": self._files(root / "test")}
            folders = sorted(set(raw["train"]) | set(raw["test"]))
        else:
            flat = self._files(root)
            folders = sorted(flat)
        if not folders or not any(raw["train"].values() if split_layout else flat.values()):
            raise FileNotFoundError(f"folder: no images with extensions {', '.join(self.extensions)} under "
                                    f"{str(root)!r}; expected layout: {LAYOUT}")
        to_class = self._to_class(root, folders, quiet=quiet)
        class_names = sorted(set(to_class.values()))
        self._check_classes(root, class_names)
        if not split_layout:
            # Each benchmark class is split as a whole (its folders' files, in order), at least one image
            # on each side, so a small class is never left out of train or test.
            by_class: dict[str, list[Path]] = {c: [] for c in class_names}
            for f in folders:
                if f in to_class:
                    by_class[to_class[f]] += flat[f]
            raw = {"train": {}, "test": {}}
            for cls, files in by_class.items():
                if len(files) < 2:
                    raise ValueError(f"folder: class {cls!r} has {len(files)} image(s) under {str(root)!r}; "
                                     "splitting into train and test needs at least 2 per class (add images, or "
                                     "drop the class with class_map)")
                perm = torch.randperm(len(files), generator=generator(seed, "folder", "split", cls)).tolist()
                n_test = min(max(round(self.test_fraction * len(files)), 1), len(files) - 1)
                raw["test"][cls] = [files[j] for j in perm[:n_test]]
                raw["train"][cls] = [files[j] for j in perm[n_test:]]
            to_class = {c: c for c in class_names}
        else:
            for cls in class_names:
                counts = {part: sum(len(raw[part].get(f, [])) for f in folders if to_class.get(f) == cls)
                          for part in ("train", "test")}
                for part, n in counts.items():
                    if n == 0:
                        raise ValueError(f"folder: class {cls!r} has 0 {part} images under {str(root / part)!r} "
                                         f"({counts['train']} train, {counts['test']} test); every class needs at "
                                         "least one image in train and in test (add images, or drop the class "
                                         "with class_map)")
        index = {c: i for i, c in enumerate(class_names)}
        pools = {part: [(f, index[to_class[cls]]) for cls in sorted(raw[part]) if cls in to_class
                        for f in raw[part][cls]] for part in raw}
        return class_names, pools

    # ----------------------------------------------------------------- loading

    def load(self, image_size: int, n_train: int, n_test: int, seed: int) -> CleanData:
        check_sizes(image_size, n_train, n_test, seed)
        class_names, pools = self.discover(seed)
        bad: dict[Path, str] = {}  # every unreadable file, once, in discovery order
        parts = {}
        for part, n in (("train", n_train), ("test", n_test)):
            pool = pools[part]
            order = torch.randperm(len(pool), generator=generator(seed, "folder", part)).tolist()
            images, labels = [], []
            used = 0
            while used < len(order) and len(images) < n:  # read in seeded order until n readable images are found
                path, label = pool[order[used]]
                used += 1
                try:
                    images.append(load_image(path, image_size))
                    labels.append(label)
                except Exception as exc:  # PIL raises many types for corrupt files
                    bad[path] = _describe(exc, path)
            for j in order[used:]:  # the files not needed are probed too, so every bad one is reported
                path = pool[j][0]
                try:
                    probe_image(path)
                except Exception as exc:
                    bad[path] = _describe(exc, path)
            if len(images) < n:
                log.warning("folder: %d %s images requested, only %d readable ones exist under %r; using %d",
                            n, part, len(images), str(self.root), len(images))
            parts[part] = (images, labels)
        bad_list = sorted(bad.items())
        if bad_list and self.on_error == "raise":
            raise UnreadableImagesError(bad_list)
        if bad_list:
            log.warning("folder: skipped %d unreadable image file(s): %s", len(bad_list),
                        "; ".join(f"{p} ({err})" for p, err in bad_list))
        for part, (images, labels) in parts.items():
            if not images:
                raise ValueError(f"folder: no readable {part} images under {str(self.root)!r} (layout: {LAYOUT})")
            parts[part] = (torch.stack(images), torch.tensor(labels, dtype=torch.int64))
        return CleanData(parts["train"][0], parts["train"][1], parts["test"][0], parts["test"][1], class_names)
