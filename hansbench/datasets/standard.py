"""Public image datasets (Fashion-MNIST, MNIST, CIFAR-10, GTSRB, SVHN) from local files, never downloaded.

So that real images go through the benchmark, each reads its standard files from a folder, ``root``.
Each reads the layout torchvision reads (or the bare files), repeats grayscale to three channels, resizes to
the scenario's ``image_size`` (antialiased bilinear), and draws ``n_train`` / ``n_test`` images uniformly by seed
from the dataset's own train / test parts (as ``digits`` and ``folder`` do; not class-balanced). A missing or
partial root is refused by ``class_names()``, which the suite's checks call before any work, in one line naming
the files expected and how to obtain them. The files are read by :mod:`hansbench.datasets.standard_files`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from hansbench.datasets._helpers import CleanData, Configurable, check_sizes, generator, resize
from hansbench.datasets.standard_files import (
    MissingFilesError,
    cifar_names,
    gtsrb_test_files,
    gtsrb_train_files,
    idx_header,
    idx_path,
    read_cifar,
    read_idx,
    read_images,
    read_svhn,
)
from hansbench.registry import datasets

log = logging.getLogger("hansbench.datasets.standard")
DIGITS = [str(d) for d in range(10)]
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FASHION_ROOT = "/usr/share/datasets/fashion-mnist"  # where Debian's dataset-fashion-mnist puts the idx files
IDX_STEMS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# GTSRB's 43 classes (the benchmark's signnames), indexed by the number of the Training/<000NN> folder
GTSRB_NAMES = [
    "speed limit 20", "speed limit 30", "speed limit 50", "speed limit 60", "speed limit 70", "speed limit 80",
    "end of speed limit 80", "speed limit 100", "speed limit 120", "no passing", "no passing over 3.5 t",
    "right-of-way at next intersection", "priority road", "yield", "stop", "no vehicles",
    "vehicles over 3.5 t prohibited", "no entry", "general caution", "dangerous curve left",
    "dangerous curve right", "double curve", "bumpy road", "slippery road", "road narrows on the right",
    "road work", "traffic signals", "pedestrians", "children crossing", "bicycles crossing", "beware of ice/snow",
    "wild animals crossing", "end of all speed and passing limits", "turn right ahead", "turn left ahead",
    "ahead only", "go straight or right", "go straight or left", "keep right", "keep left",
    "roundabout mandatory", "end of no passing", "end of no passing over 3.5 t",
]


class StandardDataset(Configurable):
    """Base: a ``root`` option, the refusal of a missing or partial root, the seeded draw, the conversion.

    Subclasses set ``layout`` and ``obtain`` (the refusal's words) and implement ``_locate`` (the files, or
    :class:`MissingFilesError`), ``class_names``, ``_read(part)`` -> (source, labels) and ``_take(source, idx)``
    -> uint8 images (an array ``[k, H, W]`` / ``[k, H, W, 3]``, or a list of ``[H, W, 3]`` of any size).
    """

    kind = "dataset"
    layout: ClassVar[str] = ""
    obtain: ClassVar[str] = ""

    def __init__(self, root: str | None = None):
        self.root = root
        if self.root is not None and not isinstance(self.root, str):
            raise ValueError(f"{self.name}: root must be a folder path (a string), got {self.root!r}")

    def _root(self) -> Path:
        if self.root is None:
            raise MissingFilesError(self._refusal("no root given (dataset_options = { root = \"...\" })"))
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise MissingFilesError(self._refusal(f"root {str(root)!r} is not a folder"))
        return root

    def _refusal(self, problem: str) -> str:
        return f"{self.name}: {problem}; expected {self.layout}; {self.obtain}"

    def _missing(self, root: Path, missing: list[str]) -> MissingFilesError:
        return MissingFilesError(self._refusal(f"root {str(root)!r} lacks {', '.join(missing)}"))

    def _locate(self) -> Any:
        raise NotImplementedError

    def class_names(self) -> list[str]:
        raise NotImplementedError

    def _read(self, part: str) -> tuple[Any, np.ndarray]:
        raise NotImplementedError

    def _take(self, source: Any, idx: np.ndarray) -> Any:
        return source[idx]

    def load(self, image_size: int, n_train: int, n_test: int, seed: int) -> CleanData:
        check_sizes(image_size, n_train, n_test, seed)
        names = self.class_names()  # refuses a missing or partial root before anything is read
        out = {}
        for part, n in (("train", n_train), ("test", n_test)):
            source, labels = self._read(part)
            if n > len(labels):
                log.warning("%s: %d %s images requested, the %s part has %d; using %d", self.name, n, part, part,
                            len(labels), len(labels))
            idx = torch.randperm(len(labels), generator=generator(seed, self.name, part))[:n].numpy()
            out[part] = (to_images(self._take(source, idx), image_size), torch.from_numpy(labels[idx].copy()))
        return CleanData(out["train"][0], out["train"][1], out["test"][0], out["test"][1], names)


def to_images(raw: Any, size: int) -> torch.Tensor:
    """uint8 images (``[k, H, W]`` grayscale, ``[k, H, W, 3]`` RGB, or a list of ``[H, W, 3]``) as float32
    ``[k, 3, size, size]`` in [0, 1]: grayscale repeated to three channels, resized."""
    if isinstance(raw, list):
        return torch.cat([to_images(im[None], size) for im in raw]) if raw else torch.zeros(0, 3, size, size)
    x = torch.from_numpy(np.ascontiguousarray(raw)).float().div_(255.0)
    x = x.unsqueeze(1).expand(-1, 3, -1, -1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    return resize(x.contiguous(), size).clamp_(0, 1).contiguous()


class IdxDataset(StandardDataset):
    """MNIST-style idx files in ``root`` or in torchvision's ``root/<folder>/raw``."""

    torchvision_folder: ClassVar[str] = ""

    def _locate(self) -> dict[str, tuple[Path, Path]]:
        root = self._root()
        best: tuple[list[str], Path] | None = None
        for folder in (root, root / self.torchvision_folder / "raw"):
            found = {part: tuple(idx_path(folder, s) for s in stems) for part, stems in IDX_STEMS.items()}
            missing = [f"{s}[.gz]" for part, stems in IDX_STEMS.items() for s, p in zip(stems, found[part])
                       if p is None]
            if not missing:
                self._check_headers(found)
                return found
            if best is None or len(missing) < len(best[0]):
                best = (missing, folder)
        raise self._missing(best[1], best[0])

    @staticmethod
    def _check_headers(found: dict[str, tuple[Path, Path]]) -> None:
        for images, labels in found.values():
            shape, count = idx_header(images), idx_header(labels)
            if len(shape) != 3 or len(count) != 1 or shape[0] != count[0]:
                raise MissingFilesError(f"{images} declares {shape} and {labels} {count}: not a matching pair of "
                                        "idx image and label files; replace them with the original files")

    def class_names(self) -> list[str]:
        self._locate()
        return list(self.names)

    def _read(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        images, labels = self._locate()[part]
        return read_idx(images), read_idx(labels).astype(np.int64)


IDX_FILES = "the four idx files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, " \
            "t10k-labels-idx1-ubyte (each gzipped .gz or plain)"


@datasets.register("fashion-mnist")
class FashionMNIST(IdxDataset):
    """Fashion-MNIST (Xiao et al. 2017): 70,000 28 px grayscale photographs of clothing, 10 classes.

    Options: ``root`` (default ``/usr/share/datasets/fashion-mnist``, where Debian's ``dataset-fashion-mnist``
    puts the idx files): the idx files, gzipped or plain, in ``root`` or torchvision's ``root/FashionMNIST/raw``.
    """

    names = FASHION
    torchvision_folder = "FashionMNIST"
    layout = f"{IDX_FILES} in root or root/FashionMNIST/raw"
    obtain = (f"get them with `apt-get install dataset-fashion-mnist` (installs them in {FASHION_ROOT}, the default "
              "root) or from https://github.com/zalandoresearch/fashion-mnist")

    def __init__(self, root: str | None = FASHION_ROOT):
        super().__init__(root)


@datasets.register("mnist")
class MNIST(IdxDataset):
    """MNIST (LeCun et al. 1998): 70,000 28 px grayscale handwritten digits, classes "0".."9".

    Options: ``root`` (required): the idx files, gzipped or plain, in ``root`` or torchvision's ``root/MNIST/raw``.
    """

    names = DIGITS
    torchvision_folder = "MNIST"
    layout = f"{IDX_FILES} in root or root/MNIST/raw"
    obtain = ("copy them from an existing torchvision MNIST folder or from a mirror of "
              "http://yann.lecun.com/exdb/mnist/ (hansbench never downloads)")


CIFAR_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")


@datasets.register("cifar10")
class CIFAR10(StandardDataset):
    """CIFAR-10 (Krizhevsky 2009): 60,000 32 px colour photographs, 10 classes (names from ``batches.meta``).

    Options: ``root`` (required): the folder holding ``cifar-10-batches-py`` (torchvision's root) or that folder.
    The batches are Python pickles: they are read with a restricted unpickler that builds only numpy arrays,
    lists, dicts, strings and numbers, so a file in that layout cannot run code; still, use a root you trust.
    """

    layout = ("cifar-10-batches-py/ holding data_batch_1..data_batch_5, test_batch and batches.meta, in root or as "
              "root itself")
    obtain = ("unpack cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html (or copy a torchvision "
              "CIFAR10 folder); hansbench never downloads")

    def _locate(self) -> Path:
        root = self._root()
        folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
        missing = [f"cifar-10-batches-py/{f}" for f in (*CIFAR_BATCHES, "batches.meta") if not (folder / f).is_file()]
        if missing:
            raise self._missing(root, missing)
        return folder

    def class_names(self) -> list[str]:
        return cifar_names(self._locate() / "batches.meta")

    def _read(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        folder = self._locate()
        return read_cifar([folder / b for b in (CIFAR_BATCHES[:5] if part == "train" else CIFAR_BATCHES[5:])])


@datasets.register("svhn")
class SVHN(StandardDataset):
    """SVHN (Netzer et al. 2011), cropped digits: 32 px colour house numbers, classes "0".."9".

    Options: ``root`` (required): the folder holding ``train_32x32.mat`` and ``test_32x32.mat`` (torchvision's root).
    """

    layout = "train_32x32.mat and test_32x32.mat in root"
    obtain = ("get them from http://ufldl.stanford.edu/housenumbers/ (format 2) or copy a torchvision SVHN folder; "
              "hansbench never downloads")

    def _locate(self) -> Path:
        root = self._root()
        missing = [f for f in ("train_32x32.mat", "test_32x32.mat") if not (root / f).is_file()]
        if missing:
            raise self._missing(root, missing)
        return root

    def class_names(self) -> list[str]:
        self._locate()
        return list(DIGITS)

    def _read(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        return read_svhn(self._locate() / f"{part}_32x32.mat")


@datasets.register("gtsrb")
class GTSRB(StandardDataset):
    """GTSRB (Stallkamp et al. 2012): German traffic-sign photographs of 15-250 px, 43 classes (``stop`` is 14).

    Options: ``root`` (required): torchvision's layout, ``root/gtsrb/GTSRB/Training/000NN/*.ppm`` (class = folder
    number), ``root/gtsrb/GTSRB/Final_Test/Images/*.ppm`` and ``root/gtsrb/GT-final_test.csv``; ``root`` may also
    be the ``gtsrb`` folder itself. Only the images drawn are decoded.
    """

    layout = ("gtsrb/GTSRB/Training/000NN/*.ppm, gtsrb/GTSRB/Final_Test/Images/*.ppm and gtsrb/GT-final_test.csv "
              "in root (torchvision's GTSRB layout)")
    obtain = ("unpack GTSRB_Final_Training_Images.zip, GTSRB_Final_Test_Images.zip and GTSRB_Final_Test_GT.zip from "
              "https://benchmark.ini.rub.de/ there (or copy a torchvision GTSRB folder); hansbench never downloads")

    def _locate(self) -> Path:
        root = self._root()
        base = root / "gtsrb" if (root / "gtsrb").is_dir() else root
        train = base / "GTSRB" / "Training"
        missing = []
        if not train.is_dir() or not any(p.is_dir() and p.name.isdigit() for p in train.iterdir()):
            missing.append("gtsrb/GTSRB/Training/000NN/ class folders")
        if not (base / "GTSRB" / "Final_Test" / "Images").is_dir():
            missing.append("gtsrb/GTSRB/Final_Test/Images/")
        if not (base / "GT-final_test.csv").is_file():
            missing.append("gtsrb/GT-final_test.csv")
        if missing:
            raise self._missing(root, missing)
        return base

    def class_names(self) -> list[str]:
        self._locate()
        return list(GTSRB_NAMES)

    def _read(self, part: str) -> tuple[list[Path], np.ndarray]:
        base = self._locate()
        if part == "train":
            pairs = gtsrb_train_files(base / "GTSRB" / "Training")
        else:
            pairs = gtsrb_test_files(base / "GTSRB" / "Final_Test" / "Images", base / "GT-final_test.csv")
        bad = sorted({c for _, c in pairs if not 0 <= c < len(GTSRB_NAMES)})
        if not pairs or bad:
            raise MissingFilesError(self._refusal(f"the {part} part of {str(base)!r} has "
                                                  f"{'no images' if not pairs else f'classes {bad} outside 0-42'}"))
        return [p for p, _ in pairs], np.array([c for _, c in pairs], dtype=np.int64)

    def _take(self, source: list[Path], idx: np.ndarray) -> list[np.ndarray]:
        return read_images([source[i] for i in idx])
