"""Built-in image datasets: MNIST from the shared copy, IDX validation, CIFAR readers, digits."""

from __future__ import annotations

import collections
import gzip
import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from fathom.data import load, vision
from fathom.data.bundle import DataBundle
from fathom.data.splits import finalize
from fathom.errors import DataError


def row_hashes(inputs: torch.Tensor) -> list[int]:
    """One integer per image from the exact 0..255 values of its central 16x16 pixels.

    Integer weights below 2**20 keep every dot product exact in float64, whatever the BLAS order.
    """
    pixels = (inputs[:, :, 6:22, 6:22].reshape(len(inputs), -1).double() * 255).round()
    generator = torch.Generator().manual_seed(0)
    weights = torch.randint(1, 2**20, (pixels.shape[1],), generator=generator, dtype=torch.float64)
    return (pixels @ weights).long().tolist()


def denormalize(inputs: torch.Tensor, bundle: DataBundle) -> torch.Tensor:
    mean, std = bundle.info.normalization["mean"], bundle.info.normalization["std"]
    return inputs * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)


def test_mnist_shapes_labels_and_info(mnist_raw):
    train, test = mnist_raw.train, mnist_raw.test
    assert train.inputs.shape == (60000, 1, 28, 28) and test.inputs.shape == (10000, 1, 28, 28)
    assert train.inputs.dtype == torch.float32 and train.targets.dtype == torch.int64
    assert float(train.inputs.min()) == 0.0 and float(train.inputs.max()) == 1.0
    assert train.targets[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]  # the published first labels
    assert torch.bincount(test.targets).tolist()[:3] == [980, 1135, 1032]
    assert mnist_raw.val is None
    info = mnist_raw.info
    assert info.num_classes == 10 and info.class_names == [str(digit) for digit in range(10)]
    assert info.extra == {"image_size": 28, "channels": 1}


def test_mnist_load_splits_are_disjoint_seeded_and_normalised_on_train_only(mnist_root, mnist_raw):
    bundle = load("mnist", data_dir=mnist_root, download=False, limit=5000, seed=0)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (5000, 6000, 10000)
    train = denormalize(bundle.train.inputs, bundle)
    val = denormalize(bundle.val.inputs, bundle)
    # train and val are disjoint draws from the official training set (as multisets)
    available = collections.Counter(row_hashes(mnist_raw.train.inputs))
    used = collections.Counter(row_hashes(train)) + collections.Counter(row_hashes(val))
    assert not used - available
    # the official test split is kept as is
    assert torch.allclose(denormalize(bundle.test.inputs, bundle), mnist_raw.test.inputs, atol=1e-5)
    # statistics come from the (limited) training split only
    mean = bundle.info.normalization["mean"][0]
    assert mean == pytest.approx(float(train.mean()), abs=1e-5)
    assert mean != pytest.approx(float(mnist_raw.train.inputs.mean()), abs=1e-4)
    assert float(bundle.train.inputs.mean()) == pytest.approx(0.0, abs=1e-4)
    # the validation split is a seeded permutation: the same seed gives the same one
    again = finalize(mnist_raw, val_fraction=0.1, test_fraction=0.2, seed=0, normalize=False)
    assert torch.allclose(again.val.inputs, val, atol=1e-5)


def test_mnist_missing_or_altered_files_are_one_line_errors(tmp_path, shared_file):
    shared = shared_file("mnist", "train-images-idx3-ubyte.gz").parent
    with pytest.raises(
        DataError, match=rf"train-images-idx3-ubyte.gz not found; put it in {tmp_path / 'mnist'}"
    ):
        vision.mnist(tmp_path, download=False)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in vision.MNIST_FILES:
        os.symlink(shared / name, folder / name)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"corrupt")
    with pytest.raises(
        DataError, match=r"t10k-labels-idx1-ubyte.gz has sha256 [0-9a-f]{64}, expected f7ae60f9"
    ):
        vision.mnist(tmp_path, download=False)


def write_idx(path: Path, magic: int, shape: tuple[int, ...], payload: bytes | None = None) -> Path:
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in shape)
    data = payload if payload is not None else bytes(int(np.prod(shape)))
    path.write_bytes(gzip.compress(header + data))
    return path


def test_read_idx_validates_magic_size_and_gzip(tmp_path):
    good = write_idx(tmp_path / "good.gz", vision.IDX_IMAGES, (2, 3, 4), bytes(range(24)))
    assert vision.read_idx(good, vision.IDX_IMAGES).shape == (2, 3, 4)
    with pytest.raises(
        DataError, match=r"good.gz: IDX magic number 0x00000803, expected 0x00000801"
    ):
        vision.read_idx(good, vision.IDX_LABELS)
    short = write_idx(tmp_path / "short.gz", vision.IDX_IMAGES, (2, 3, 4), bytes(20))
    with pytest.raises(DataError, match=r"short.gz: 20 bytes of data, expected 24"):
        vision.read_idx(short, vision.IDX_IMAGES)
    plain = tmp_path / "plain.gz"
    plain.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="plain.gz: not a readable gzip file"):
        vision.read_idx(plain, vision.IDX_IMAGES)


def test_digits_is_embedded_and_scaled():
    bundle = load("digits", normalize=False)
    assert bundle.info.input_shape == (1, 8, 8) and bundle.info.num_classes == 10
    total = len(bundle.train) + len(bundle.val) + len(bundle.test)
    assert total == 1797 and len(bundle.test) == round(1797 * 0.2)
    assert float(bundle.train.inputs.max()) == 1.0 and float(bundle.train.inputs.min()) == 0.0


def pickle_bytes(value: object) -> bytes:
    return pickle.dumps(value, protocol=4)  # no _codecs global, like the py2 originals


def make_cifar_archive(path: Path, folder: str, files: dict[str, object]) -> str:
    with tarfile.open(path, "w:gz") as archive:
        for name, value in files.items():
            payload = pickle_bytes(value)
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cifar_batch(count: int, seed: int, **labels: list[int]) -> dict[bytes, object]:
    data = np.random.default_rng(seed).integers(0, 256, (count, 3072), dtype=np.uint8)
    return {
        b"data": data,
        b"batch_label": b"testing",
        **{key.encode(): value for key, value in labels.items()},
    }


def test_cifar10_python_batches_are_extracted_and_read(tmp_path, monkeypatch):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    files: dict[str, object] = {
        "batches.meta": {b"label_names": [name.encode() for name in vision.CIFAR10_CLASSES]}
    }
    for number in range(1, 6):
        files[f"data_batch_{number}"] = cifar_batch(4, number, labels=[number, 0, 9, 3])
    files["test_batch"] = cifar_batch(3, 0, labels=[1, 2, 3])
    sha256 = make_cifar_archive(folder / "cifar-10-python.tar.gz", "cifar-10-batches-py", files)
    monkeypatch.setattr(vision, "CIFAR10_ARCHIVE", ("cifar-10-python.tar.gz", sha256))
    bundle = vision.cifar10(tmp_path, download=False)
    assert bundle.train.inputs.shape == (20, 3, 32, 32) and bundle.test.inputs.shape == (
        3,
        3,
        32,
        32,
    )
    assert (
        bundle.train.targets[:4].tolist() == [1, 0, 9, 3]
        and bundle.info.class_names[0] == "airplane"
    )
    first = files["data_batch_1"][b"data"][0]  # type: ignore[index]
    assert torch.equal(
        (bundle.train.inputs[0] * 255).round().to(torch.uint8).flatten(), torch.from_numpy(first)
    )
    assert (folder / "cifar-10-batches-py" / "test_batch").is_file()


def test_cifar100_fine_labels_and_coarse_names(tmp_path, monkeypatch):
    folder = tmp_path / "cifar100"
    folder.mkdir()
    fine_names = [f"fine{index}".encode() for index in range(100)]
    coarse_names = [f"coarse{index}".encode() for index in range(20)]
    files = {
        "meta": {b"fine_label_names": fine_names, b"coarse_label_names": coarse_names},
        "train": cifar_batch(3, 1, fine_labels=[99, 0, 42], coarse_labels=[19, 4, 7]),
        "test": cifar_batch(2, 2, fine_labels=[5, 6], coarse_labels=[0, 1]),
    }
    sha256 = make_cifar_archive(folder / "cifar-100-python.tar.gz", "cifar-100-python", files)
    monkeypatch.setattr(vision, "CIFAR100_ARCHIVE", ("cifar-100-python.tar.gz", sha256))
    bundle = vision.cifar100(tmp_path, download=False)
    assert bundle.info.num_classes == 100 and bundle.train.targets.tolist() == [99, 0, 42]
    assert bundle.info.extra["coarse_class_names"][19] == "coarse19"
    assert bundle.info.extra["fine_to_coarse"][42] == 7


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_cifar_unpickler_refuses_anything_but_arrays(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "data_batch_1"
    evil.write_bytes(pickle.dumps({b"data": Exploit()}, protocol=4))
    with pytest.raises(DataError, match=r"data_batch_1: refusing to load '(posix|os|nt)\.system'"):
        vision.unpickle(evil)
    assert not (tmp_path / "pwned").exists()
    evil.write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a readable CIFAR batch"):
        vision.unpickle(evil)


def test_cifar10_npz_shards_are_verified_and_transposed(tmp_path, monkeypatch):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    hashes = {}
    for index, name in enumerate(vision.CIFAR10_SHARDS):
        images = np.random.default_rng(index).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
        np.savez_compressed(folder / name, images=images, labels=np.arange(10, dtype=np.uint8))
        hashes[name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    with pytest.raises(DataError, match=r"cifar10-train-0.npz has sha256 .* corrupt or altered"):
        vision.cifar10(tmp_path, download=False)
    monkeypatch.setattr(vision, "CIFAR10_SHARDS", hashes)
    bundle = vision.cifar10(tmp_path, download=False)
    assert bundle.train.inputs.shape == (50, 3, 32, 32) and len(bundle.test) == 10
    red = np.load(folder / "cifar10-train-0.npz")["images"][0, :, :, 0]
    assert torch.equal(
        (bundle.train.inputs[0, 0] * 255).round().to(torch.uint8), torch.from_numpy(red)
    )
    assert "lossy" in bundle.info.extra["source"]
    (folder / "cifar10-train-3.npz").unlink()
    with pytest.raises(DataError, match="some CIFAR-10 .npz shards but not cifar10-train-3.npz"):
        vision.cifar10(tmp_path, download=False)


def test_shared_cifar10_test_shard_is_interleaved_by_class(shared_file):
    path = shared_file("cifar10", "cifar10-test.npz")
    images, labels = vision.read_npz_shard(path)
    assert images.shape == (10000, 32, 32, 3)
    assert np.array_equal(labels, np.arange(10000) % 10)
