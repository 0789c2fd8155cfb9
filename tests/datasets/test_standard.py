"""Standard datasets from local files (Fashion-MNIST, MNIST, CIFAR-10, SVHN, GTSRB): tiny files written in each
layout, read back (shapes, channels, resizing, image/label alignment, seeds), and the one-line refusal of a
missing or partial root, from the dataset, the scenario checks and ``hansbench run``."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hansbench.datasets.scenario_checks import ScenarioError, check_scenario
from hansbench.datasets.scenarios import Scenario
from hansbench.datasets.standard import FASHION, FASHION_ROOT, GTSRB_NAMES
from hansbench.datasets.standard_files import BatchUnpickler, MissingFilesError, read_batch, read_idx
from hansbench.registry import datasets

# Every image is one grey level that encodes its label (10 * label + 5 + 100 * part), so resizing keeps it and a
# label that does not belong to its image is found: label_of(image) must equal the label returned.
N_TRAIN, N_TEST = 24, 12


def level(label: int, part: str) -> int:
    return 10 * label + 5 + (100 if part == "test" else 0)


def labels_for(n: int, k: int = 10) -> np.ndarray:
    return np.arange(n) % k


def label_of(images: torch.Tensor, part: str) -> torch.Tensor:
    grey = torch.round(images.mean(dim=(1, 2, 3)) * 255)
    return ((grey - 5 - (100 if part == "test" else 0)) / 10).round().long()


# -- writers of each layout ------------------------------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray, *, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def make_idx(root: Path, *, gz: bool = True, size: int = 28) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for part, prefix, n in (("train", "train", N_TRAIN), ("test", "t10k", N_TEST)):
        labels = labels_for(n)
        images = np.stack([np.full((size, size), level(y, part), np.uint8) for y in labels])
        write_idx(root / f"{prefix}-images-idx3-ubyte", images, gz=gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8), gz=gz)
    return root


CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def make_cifar(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, name in enumerate(["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                              "test_batch"]):
        part = "test" if name == "test_batch" else "train"
        labels = labels_for(N_TEST if part == "test" else 5) + i
        labels %= 10
        data = np.stack([np.full(3072, level(y, part), np.uint8) for y in labels])
        with open(folder / name, "wb") as f:  # protocol 2, bytes keys: as the Python 2 originals
            pickle.dump({b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": data,
                         b"filenames": [b"x.png"] * len(labels)}, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in CIFAR_NAMES], b"num_vis": 3072}, f, protocol=2)
    return root


def make_svhn(root: Path) -> Path:
    from scipy.io import savemat

    root.mkdir(parents=True)
    for part, n in (("train", N_TRAIN), ("test", N_TEST)):
        labels = labels_for(n)
        x = np.stack([np.full((32, 32, 3), level(y, part), np.uint8) for y in labels], axis=3)  # [32, 32, 3, N]
        y = np.where(labels == 0, 10, labels).reshape(-1, 1)  # SVHN writes the digit 0 as 10
        savemat(root / f"{part}_32x32.mat", {"X": x, "y": y})
    return root


def make_gtsrb(root: Path) -> Path:
    base = root / "gtsrb"
    test_dir = base / "GTSRB" / "Final_Test" / "Images"
    test_dir.mkdir(parents=True)
    for i, y in enumerate([0, 14, 42] * 4):  # images of different sizes, as GTSRB's
        folder = base / "GTSRB" / "Training" / f"{y:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20 + i, 30 + i), (level(y % 10, "train"),) * 3).save(folder / f"00000_{i:05d}.ppm")
    rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for i, y in enumerate([14, 3, 42, 0] * 3):
        Image.new("RGB", (25, 40), (level(y % 10, "test"),) * 3).save(test_dir / f"{i:05d}.ppm")
        rows.append(f"{i:05d}.ppm;25;40;5;5;20;35;{y}")
    (base / "GT-final_test.csv").write_text("\n".join(rows) + "\n")
    return root


MAKERS = {"fashion-mnist": make_idx, "mnist": make_idx, "cifar10": make_cifar, "svhn": make_svhn,
          "gtsrb": make_gtsrb}


def load(name: str, root: Path, size: int = 16, seed: int = 0, n_train: int = 10, n_test: int = 6):
    return datasets.get(name)(root=str(root)).load(size, n_train, n_test, seed)


# -- reading -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.parametrize("size", [16, 40])
def test_each_layout_loads_three_channels_resized_with_its_labels(tmp_path, name, size):
    root = MAKERS[name](tmp_path / name)
    d = load(name, root, size=size)
    assert d.train_images.shape == (10, 3, size, size) and d.test_images.shape == (6, 3, size, size)
    assert d.train_images.dtype == torch.float32 and 0 <= d.train_images.min() <= d.train_images.max() <= 1
    assert torch.equal(d.train_images[:, 0], d.train_images[:, 1]) and torch.equal(d.train_images[:, 1],
                                                                                 d.train_images[:, 2])
    for part in ("train", "test"):
        images, labels = getattr(d, f"{part}_images"), getattr(d, f"{part}_labels")
        assert torch.equal(label_of(images, part), labels % 10), f"{name} {part}: images and labels misaligned"
    expected = {"fashion-mnist": FASHION, "cifar10": CIFAR_NAMES, "gtsrb": GTSRB_NAMES}.get(name, list("0123456789"))
    assert d.class_names == expected


def test_torchvision_layout_and_plain_idx_files(tmp_path):
    make_idx(tmp_path / "FashionMNIST" / "raw", gz=False)
    d = load("fashion-mnist", tmp_path)
    assert torch.equal(label_of(d.train_images, "train"), d.train_labels)


def test_idx_reader_matches_torchvision(tmp_path):
    from torchvision.datasets.mnist import read_sn3_pascalvincent_tensor

    array = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    write_idx(tmp_path / "x-idx3-ubyte", array, gz=False)
    ours = read_idx(tmp_path / "x-idx3-ubyte")
    assert np.array_equal(ours, array)
    assert np.array_equal(ours, read_sn3_pascalvincent_tensor(str(tmp_path / "x-idx3-ubyte"), strict=False).numpy())


def test_svhn_label_10_is_the_digit_0_and_gtsrb_classes_come_from_folders(tmp_path):
    svhn = load("svhn", make_svhn(tmp_path / "s"), n_train=N_TRAIN, n_test=N_TEST)
    assert set(svhn.train_labels.tolist()) == set(range(10))
    gt = load("gtsrb", make_gtsrb(tmp_path / "g"), n_train=12, n_test=12)
    assert sorted(set(gt.train_labels.tolist())) == [0, 14, 42] and GTSRB_NAMES[14] == "stop"
    assert sorted(set(gt.test_labels.tolist())) == [0, 3, 14, 42]


def test_draw_is_deterministic_per_seed_and_differs_between_seeds(tmp_path):
    root = make_idx(tmp_path / "f")
    a, b, c = (load("mnist", root, seed=s) for s in (3, 3, 4))
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.test_labels, b.test_labels)
    assert not torch.equal(a.train_labels, c.train_labels)


def test_more_images_than_exist_are_capped(tmp_path, caplog):
    d = load("mnist", make_idx(tmp_path / "f"), n_train=100, n_test=3)
    assert len(d.train_labels) == N_TRAIN and "the train part has 24" in caplog.text


def test_restricted_unpickler_refuses_any_other_global(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(MissingFilesError, match="refused global"):
        read_batch(path)
    assert not (tmp_path / "pwned").exists()
    arr = np.arange(6, dtype=np.uint8)
    for protocol in (2, 4, 5):  # numpy arrays pickle through other globals under other protocols
        import io
        assert np.array_equal(BatchUnpickler(io.BytesIO(pickle.dumps(arr, protocol=protocol))).load(), arr)


# -- the refusal -----------------------------------------------------------------------------------------------
MISSING = {"fashion-mnist": "t10k-labels-idx1-ubyte.gz", "mnist": "train-images-idx3-ubyte.gz",
           "cifar10": "cifar-10-batches-py/data_batch_3", "svhn": "test_32x32.mat", "gtsrb": "gtsrb/GT-final_test.csv"}
NAMED = {"fashion-mnist": "t10k-labels-idx1-ubyte[.gz]", "mnist": "train-images-idx3-ubyte[.gz]",
         "cifar10": "cifar-10-batches-py/data_batch_3", "svhn": "test_32x32.mat", "gtsrb": "gtsrb/GT-final_test.csv"}


@pytest.mark.parametrize("name", list(MAKERS))
def test_missing_and_partial_roots_are_refused_in_one_line_naming_the_files(tmp_path, name):
    root = MAKERS[name](tmp_path / name)
    (root / MISSING[name]).unlink()
    with pytest.raises(MissingFilesError) as partial:
        datasets.get(name)(root=str(root)).class_names()
    msg = str(partial.value)
    assert NAMED[name] in msg and ("never downloads" in msg or "apt-get install dataset-fashion-mnist" in msg)
    assert "\n" not in msg and msg.startswith(f"{name}: root ")
    with pytest.raises(MissingFilesError, match="is not a folder") as missing:
        datasets.get(name)(root=str(tmp_path / "nowhere")).class_names()
    assert "expected" in str(missing.value) and "\n" not in str(missing.value)


def test_a_truncated_idx_file_is_refused(tmp_path):
    root = make_idx(tmp_path / "f", gz=False)
    path = root / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:6])
    with pytest.raises(MissingFilesError, match="truncated"):
        datasets.get("mnist")(root=str(root)).class_names()


def test_fashion_default_root_is_debians_and_the_suite_check_refuses_before_any_work(tmp_path):
    assert datasets.get("fashion-mnist")().root == FASHION_ROOT
    sc = Scenario.filled({"dataset": "fashion-mnist", "affected_class": "Shirt", "poisoning": "CH", "fraction": 0.5,
                          "dataset_options": {"root": str(tmp_path)}, "image_size": 28})
    with pytest.raises(ScenarioError) as err:
        check_scenario(sc)
    assert err.value.key == "dataset_options" and "apt-get install dataset-fashion-mnist" in err.value.reason


def test_hansbench_run_refuses_a_partial_root_with_exit_2_and_one_line(tmp_path, capsys):
    from hansbench.bench.cli import main

    root = make_idx(tmp_path / "f")
    (root / "t10k-images-idx3-ubyte.gz").unlink()
    suite = tmp_path / "s.toml"
    suite.write_text(f'[suite]\nextends = "fashion-smoke"\nname = "x"\n[data]\ndataset_options = {{ root = "{root}" }}\n')
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "t10k-images-idx3-ubyte[.gz]" in err and "dataset-fashion-mnist" in err
    assert not out.exists()


# -- the real files, where Debian's package is installed --------------------------------------------------------
@pytest.mark.skipif(not Path(FASHION_ROOT).is_dir(), reason=f"{FASHION_ROOT} absent (apt-get install "
                    "dataset-fashion-mnist)")
def test_the_real_fashion_mnist_files():
    ds = datasets.get("fashion-mnist")()
    found = ds._locate()
    train, test = read_idx(found["train"][1]), read_idx(found["test"][1])
    assert len(train) + len(test) == 70_000 and np.bincount(train).tolist() == [6000] * 10
    # the first labels of each part, as the dataset's README and torchvision read them
    assert [FASHION[y] for y in train[:4]] == ["Ankle boot", "T-shirt/top", "T-shirt/top", "Dress"]
    assert [FASHION[y] for y in test[:4]] == ["Ankle boot", "Pullover", "Trouser", "Trouser"]
    d = ds.load(28, 50, 20, 0)
    assert d.train_images.shape == (50, 3, 28, 28) and d.class_names[6] == "Shirt"
