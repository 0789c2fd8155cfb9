"""Readers of the standard files of public image datasets, from a local folder: never a download.

Each reader returns ``(images uint8 [N, H, W] or [N, H, W, 3], labels int64 [N])`` as numpy arrays:

- idx (MNIST, Fashion-MNIST): ``*-idx3-ubyte`` / ``*-idx1-ubyte``, gzipped or plain, header checked;
- CIFAR-10's python batches: read with a restricted unpickler that builds numpy arrays, dicts, lists,
  strings and numbers and refuses any other global, so a file in that layout cannot run code;
- SVHN's ``*_32x32.mat`` (scipy.io.loadmat; label 10 is the digit 0, as torchvision maps it);
- GTSRB in torchvision's layout (``gtsrb/GTSRB/Training/<class>/*.ppm``, ``Final_Test/Images`` + ``GT-final_test.csv``):
  the file list here, the few images drawn decoded by the dataset.

:class:`MissingFilesError` is the one refusal of a missing or partial root: one line naming the files
expected and how to obtain them. The datasets raise it from ``class_names()``, which the suite's checks call
before any work (``hansbench run`` exits 2 with that line).
"""

from __future__ import annotations

import csv
import gzip
import importlib
import io
import pickle
from pathlib import Path

import numpy as np


class MissingFilesError(FileNotFoundError):
    """A dataset root lacks files (or holds broken ones); the message names them and how to get them."""


# -- idx ------------------------------------------------------------------------------------------------------
IDX_TYPES = {0x08: np.uint8}  # the only element type MNIST-style image and label files use


def idx_path(folder: Path, stem: str) -> Path | None:
    """``folder/stem.gz`` or ``folder/stem`` (the gzipped file first), None if neither exists."""
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def idx_header(path: Path) -> tuple[int, ...]:
    """The shape an idx file declares; a :class:`MissingFilesError` for a file that is not idx uint8."""
    try:
        with _open(path) as f:
            head = f.read(4)
            if len(head) < 4 or head[0] or head[1] or head[2] not in IDX_TYPES or not 1 <= head[3] <= 3:
                raise MissingFilesError(f"{path} is not an idx file of unsigned bytes (magic {head.hex()!r}); "
                                        "replace it with the original file")
            raw = f.read(4 * head[3])
    except (OSError, EOFError) as exc:
        if isinstance(exc, MissingFilesError):
            raise
        raise MissingFilesError(f"{path} cannot be read ({exc}); replace it with the original file") from None
    if len(raw) != 4 * head[3]:
        raise MissingFilesError(f"{path} is truncated (header); replace it with the original file")
    return tuple(int(d) for d in np.frombuffer(raw, dtype=">u4"))


def read_idx(path: Path) -> np.ndarray:
    """The array an idx file holds (uint8, the declared shape); truncated files are refused."""
    shape = idx_header(path)
    with _open(path) as f:
        data = f.read()
    offset = 4 + 4 * len(shape)
    n = int(np.prod(shape))
    if len(data) - offset < n:
        raise MissingFilesError(f"{path} is truncated: {len(data) - offset} of {n} bytes; replace it with the "
                                "original file")
    return np.frombuffer(data, dtype=np.uint8, count=n, offset=offset).reshape(shape)


# -- CIFAR-10 python batches ----------------------------------------------------------------------------------
_NUMPY_GLOBALS = {  # what numpy arrays pickle to (numpy 1 and 2 module names, protocols 2-5)
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 writes bytes at protocol 2 (a pure codec call: runs no code)
}


class BatchUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers only: any other global (a function to call, a class to
    build) is refused, so a CIFAR batch file cannot run code."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: a CIFAR-10 batch holds numpy arrays, "
                                         "lists and strings only")
        module = module.replace("numpy.core.", "numpy._core.") if hasattr(np, "_core") else module
        return getattr(importlib.import_module(module), name)


def read_batch(path: Path) -> dict:
    """One CIFAR-10 python batch as a dict with str keys (the files were written by Python 2: bytes keys)."""
    try:
        with open(path, "rb") as f:
            raw = BatchUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, OSError) as exc:
        raise MissingFilesError(f"{path} is not a CIFAR-10 python batch ({exc}); replace it with the original "
                                "file") from None
    if not isinstance(raw, dict):
        raise MissingFilesError(f"{path} is not a CIFAR-10 python batch (a {type(raw).__name__}, not a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def read_cifar(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 32, 32, 3]`` uint8 and labels of the batches ``paths``, in order."""
    images, labels = [], []
    for path in paths:
        batch = read_batch(path)
        if "data" not in batch or "labels" not in batch:
            raise MissingFilesError(f"{path} lacks 'data' or 'labels'; replace it with the original CIFAR-10 batch")
        data = np.asarray(batch["data"], dtype=np.uint8)
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch["labels"], dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def cifar_names(meta: Path) -> list[str]:
    """The class names in ``batches.meta`` (``label_names``)."""
    names = read_batch(meta).get("label_names")
    if not isinstance(names, list) or not names:
        raise MissingFilesError(f"{meta} has no label_names; replace it with the original batches.meta")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


# -- SVHN -----------------------------------------------------------------------------------------------------
def read_svhn(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 32, 32, 3]`` uint8 and labels 0-9 of an SVHN ``*_32x32.mat`` (label 10 is the digit 0)."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
        x, y = mat["X"], mat["y"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MissingFilesError(f"{path} is not an SVHN .mat file with X and y ({exc}); replace it with the "
                                "original file") from None
    labels = np.asarray(y, dtype=np.int64).reshape(-1)
    labels[labels == 10] = 0
    return np.ascontiguousarray(np.transpose(x, (3, 0, 1, 2)), dtype=np.uint8), labels


# -- GTSRB ----------------------------------------------------------------------------------------------------
def gtsrb_train_files(folder: Path) -> list[tuple[Path, int]]:
    """``(file, class)`` of every ``Training/<class>/*.ppm``, the class read from the folder name (``00014``)."""
    out = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()):
        out += [(f, int(sub.name)) for f in sorted(sub.glob("*.ppm"))]
    return out


def gtsrb_test_files(images: Path, table: Path) -> list[tuple[Path, int]]:
    """``(file, class)`` of the test images listed in ``GT-final_test.csv`` (``Filename;...;ClassId``)."""
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";", skipinitialspace=True))
    if not rows or "Filename" not in rows[0] or "ClassId" not in rows[0]:
        raise MissingFilesError(f"{table} lacks the columns Filename and ClassId; replace it with the original "
                                "GT-final_test.csv")
    return [(images / r["Filename"], int(r["ClassId"])) for r in rows]


def read_images(files: list[Path]) -> list[np.ndarray]:
    """The RGB images of ``files`` as a list of uint8 ``[H, W, 3]`` arrays (sizes differ: resized later)."""
    from PIL import Image

    out = []
    for path in files:
        with Image.open(path) as im:
            out.append(np.array(im.convert("RGB"), dtype=np.uint8))
    return out
