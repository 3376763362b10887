"""Built-in image datasets: digits, MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100.

Each factory returns float32 images in [0, 1] of shape (N, C, H, W) with int64 targets, and the
official train/test split where there is one (``fathom.data.load`` carves validation). Every
downloaded file is checked against a published sha256 before it is read.
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fathom.data.bundle import DataBundle, DataInfo, Split, check_labels
from fathom.data.download import extract_archive, fetch, verify_file
from fathom.errors import DataError

try:  # numpy >= 2 (and 1.26's forward-compatible alias)
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - older numpy
    from numpy.core.multiarray import _reconstruct

# Published checksums: MNIST as in /work/shared/datasets/mnist/SOURCE.md, torchvision and tfds;
# Fashion-MNIST, CIFAR-10 and CIFAR-100 as in torchvision's prototype datasets and keras.datasets.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
)
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
FASHION_FILES = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"
CIFAR10_ARCHIVE = (
    "cifar-10-python.tar.gz",
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
)
CIFAR100_ARCHIVE = (
    "cifar-100-python.tar.gz",
    "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
)
# The project's JPEG-decoded CIFAR-10 copy (see shared/datasets/cifar10/SOURCE.md): HWC uint8,
# interleaved by class, so its order must never be relied on (splits are seeded permutations).
CIFAR10_SHARDS = {
    "cifar10-train-0.npz": "caf96ec836c679f080f627186cb36f6fbd6f02f92b228ab3862407de9118bbba",
    "cifar10-train-1.npz": "473370ebc29e59eb66688f1bb0275355e2632633d532ca38ec0e31897fda0bdb",
    "cifar10-train-2.npz": "2f27aeecda8fa5017cdda757679674d47035b4720890cc66ec370ed77db76b71",
    "cifar10-train-3.npz": "4d976f68daf4e6d6c85b989372e211b2c8d782b78445df5e8cb407cfa51d9395",
    "cifar10-train-4.npz": "4ee80e52f553de82f6f0e4ab0ff9a8571969b7d8aeb9256909ba2757988abd19",
    "cifar10-test.npz": "b639bf21433d4c2123f55c04b0325093ee77a26d06d9c679c58ec3d5fe750ae7",
}
CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


def digits(root: Path, download: bool = True) -> DataBundle:
    """scikit-learn's 1,797 8x8 digits (shipped with scikit-learn); ``load`` carves val and test."""
    table = np.loadtxt(_digits_file(), delimiter=",", dtype=np.float32)  # 64 pixels 0..16, label
    inputs = torch.from_numpy(table[:, :64] / 16.0).reshape(-1, 1, 8, 8)
    targets = torch.from_numpy(table[:, 64].astype(np.int64))
    info = image_info("digits", inputs, [str(digit) for digit in range(10)])
    return DataBundle(info, Split(inputs, targets))


def _digits_file() -> Path:
    """scikit-learn's bundled digits.csv.gz, found without importing scikit-learn (2 s saved)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the digits dataset ships with scikit-learn: pip install scikit-learn")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"


def mnist(root: Path, download: bool = True) -> DataBundle:
    """MNIST from ``root/mnist``: 60,000 train and 10,000 test 28x28 grey digits."""
    classes = [str(digit) for digit in range(10)]
    return idx_dataset("mnist", Path(root) / "mnist", MNIST_MIRRORS, MNIST_FILES, classes, download)


def fashion_mnist(root: Path, download: bool = True) -> DataBundle:
    """Fashion-MNIST from ``root/fashion-mnist``: 60,000 train and 10,000 test 28x28 grey images."""
    folder = Path(root) / "fashion-mnist"
    return idx_dataset(
        "fashion-mnist", folder, FASHION_MIRRORS, FASHION_FILES, FASHION_CLASSES, download
    )


def image_info(
    name: str, inputs: torch.Tensor, class_names: Sequence[str], **extra: Any
) -> DataInfo:
    channels, height, width = (int(size) for size in inputs.shape[1:])
    return DataInfo(
        name=name,
        task="classification",
        input_shape=(channels, height, width),
        num_classes=len(class_names),
        class_names=list(class_names),
        extra={"image_size": height, "channels": channels, **extra},
    )


def idx_dataset(
    name: str,
    folder: Path,
    mirrors: Sequence[str],
    files: dict[str, str],
    class_names: list[str],
    download: bool,
) -> DataBundle:
    """Fetch (or verify) the four IDX gzip files of an MNIST-format dataset and decode them."""
    paths = {
        file: fetch([mirror + file for mirror in mirrors], folder / file, sha256, download=download)
        for file, sha256 in files.items()
    }
    splits = []
    for prefix in ("train", "t10k"):
        images_path = paths[f"{prefix}-images-idx3-ubyte.gz"]
        labels_path = paths[f"{prefix}-labels-idx1-ubyte.gz"]
        images, labels = read_idx(images_path, IDX_IMAGES), read_idx(labels_path, IDX_LABELS)
        if len(images) != len(labels):
            raise DataError(
                f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels"
            )
        splits.append(to_split(images[:, None], labels, len(class_names), labels_path))
    return DataBundle(image_info(name, splits[0].inputs, class_names), splits[0], test=splits[1])


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Decode a gzip-compressed IDX file of unsigned bytes, checking its magic number and size."""
    try:
        with gzip.open(path, "rb") as file:
            data = file.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: not a readable gzip file ({error})") from None
    found = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if found != magic:
        shown = "none" if found is None else f"0x{found:08x}"
        raise DataError(
            f"{path}: IDX magic number {shown}, expected 0x{magic:08x}; the file is corrupt"
        )
    dimensions = magic & 0xFF
    header = 4 + 4 * dimensions
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int(size) for size in np.frombuffer(data, ">u4", count=dimensions, offset=4))
    if len(data) != header + int(np.prod(shape)):
        raise DataError(
            f"{path}: {len(data) - header} bytes of data, expected {int(np.prod(shape))} for shape {shape}"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def to_split(images: np.ndarray, labels: np.ndarray, num_classes: int, where: Path | str) -> Split:
    """uint8 images (N, C, H, W) and integer labels → a float32 [0, 1] ``Split`` with checked labels."""
    # torch converts on every core, numpy's astype on one: CIFAR-10's training images in 0.3 s
    # against 1.6 s in a fresh process (2-core EPYC), with the same float32 values
    writable = images if images.flags.writeable else images.copy()
    inputs = torch.from_numpy(writable).contiguous().float().div_(255.0)
    targets = torch.from_numpy(np.asarray(labels).astype(np.int64))
    check_labels(targets, num_classes, str(where))
    return Split(inputs, targets)


def cifar10(root: Path, download: bool = True) -> DataBundle:
    """CIFAR-10 from ``root/cifar10``: the project's .npz shards if present, else the official archive."""
    folder = Path(root) / "cifar10"
    if any((folder / shard).exists() for shard in CIFAR10_SHARDS):
        train, test = read_cifar10_shards(folder)
        info = image_info(
            "cifar10", train.inputs, CIFAR10_CLASSES, source="JPEG-decoded copy (lossy)"
        )
        return DataBundle(info, train, test=test)
    train_files = [f"data_batch_{number}" for number in range(1, 6)]
    batches = cifar_batches(folder, "cifar-10-batches-py", CIFAR10_ARCHIVE, download)
    class_names = decode_names(unpickle(batches / "batches.meta"), b"label_names", batches)
    splits = []
    for files in (train_files, ["test_batch"]):
        images, labels = read_cifar_batches([batches / file for file in files], [b"labels"])
        splits.append(to_split(images, labels[b"labels"], len(class_names), batches / files[0]))
    return DataBundle(
        image_info("cifar10", splits[0].inputs, class_names), splits[0], test=splits[1]
    )


def cifar100(root: Path, download: bool = True) -> DataBundle:
    """CIFAR-100 from ``root/cifar100`` with its 100 fine labels (coarse names kept in ``extra``)."""
    folder = Path(root) / "cifar100"
    batches = cifar_batches(folder, "cifar-100-python", CIFAR100_ARCHIVE, download)
    meta = unpickle(batches / "meta")
    class_names = decode_names(meta, b"fine_label_names", batches)
    coarse_names = decode_names(meta, b"coarse_label_names", batches)
    keys = [b"fine_labels", b"coarse_labels"]
    images, labels = read_cifar_batches([batches / "train"], keys)
    train = to_split(images, labels[b"fine_labels"], len(class_names), batches / "train")
    images, test_labels = read_cifar_batches([batches / "test"], keys[:1])
    test = to_split(images, test_labels[b"fine_labels"], len(class_names), batches / "test")
    fine_to_coarse = [0] * len(class_names)
    for fine, coarse in zip(
        labels[b"fine_labels"].tolist(), labels[b"coarse_labels"].tolist(), strict=True
    ):
        fine_to_coarse[fine] = coarse
    extra = {"coarse_class_names": coarse_names, "fine_to_coarse": fine_to_coarse}
    return DataBundle(image_info("cifar100", train.inputs, class_names, **extra), train, test=test)


def read_cifar10_shards(folder: Path) -> tuple[Split, Split]:
    """Read and verify the six .npz shards (HWC uint8 images, uint8 labels)."""
    splits = {}
    for split, names in (("train", list(CIFAR10_SHARDS)[:5]), ("test", ["cifar10-test.npz"])):
        images, labels = [], []
        for name in names:
            path = folder / name
            if not path.is_file():
                raise DataError(
                    f"{folder} holds some CIFAR-10 .npz shards but not {name}; "
                    "add it, or remove the shards to use the official archive"
                )
            verify_file(path, CIFAR10_SHARDS[name])
            shard_images, shard_labels = read_npz_shard(path)
            images.append(shard_images.transpose(0, 3, 1, 2))
            labels.append(shard_labels)
        splits[split] = to_split(
            np.concatenate(images), np.concatenate(labels), 10, folder / names[0]
        )
    return splits["train"], splits["test"]


def read_npz_shard(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as shard:
            images, labels = shard["images"], shard["labels"]
    except (OSError, ValueError, KeyError, zlib.error) as error:
        raise DataError(f"{path}: not a readable CIFAR-10 shard ({error})") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise DataError(
            f"{path}: images of {images.dtype} {images.shape}, expected uint8 N x 32 x 32 x 3"
        )
    if len(labels) != len(images):
        raise DataError(f"{path}: {len(images)} images but {len(labels)} labels")
    return images, labels


def cifar_batches(folder: Path, subfolder: str, archive: tuple[str, str], download: bool) -> Path:
    """The folder of extracted python batches, fetching and extracting the archive if needed."""
    batches = folder / subfolder
    if not batches.is_dir():
        name, sha256 = archive
        tarball = fetch(CIFAR_URL + name, folder / name, sha256, download=download)
        extract_archive(tarball, folder)
        if not batches.is_dir():
            raise DataError(f"{tarball} did not contain {subfolder}/")
    return batches


def read_cifar_batches(
    paths: list[Path], label_keys: list[bytes]
) -> tuple[np.ndarray, dict[bytes, np.ndarray]]:
    """uint8 images (N, 3, 32, 32) and each requested label array from CIFAR python batches."""
    images, labels = [], {key: [] for key in label_keys}
    for path in paths:
        batch = unpickle(path)
        data = batch.get(b"data")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape[1:] != (3072,):
            raise DataError(f"{path}: 'data' is not a uint8 array of N x 3072")
        for key in label_keys:
            values = np.asarray(batch.get(key, []), dtype=np.int64)
            if len(values) != len(data):
                raise DataError(f"{path}: {len(data)} images but {len(values)} '{key.decode()}'")
            labels[key].append(values)
        images.append(data.reshape(-1, 3, 32, 32))
    return np.concatenate(images), {key: np.concatenate(parts) for key, parts in labels.items()}


def decode_names(meta: dict[Any, Any], key: bytes, folder: Path) -> list[str]:
    names = meta.get(key)
    if not isinstance(names, list) or not names:
        raise DataError(f"{folder}: metadata has no '{key.decode()}'")
    return [name.decode("utf-8") if isinstance(name, bytes) else str(name) for name in names]


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists and numpy arrays only: any other global is refused, so a tampered
    batch file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str) -> Any:
        allowed = self.ALLOWED.get((module, name))
        if allowed is None:
            raise DataError(f"refusing to load '{module}.{name}': only numpy arrays are allowed")
        return allowed


def unpickle(path: Path) -> dict[Any, Any]:
    """Load a CIFAR python batch through ``ArrayUnpickler`` (never an unrestricted ``pickle.load``)."""
    if not path.is_file():
        raise DataError(
            f"CIFAR batch file not found: {path}; delete {path.parent} to extract it again"
        )
    try:
        with open(path, "rb") as file:
            value = ArrayUnpickler(file, encoding="bytes").load()
    except DataError as error:
        raise DataError(f"{path}: {error}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
    ) as error:
        raise DataError(f"{path}: not a readable CIFAR batch ({error})") from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: expected a dict, found {type(value).__name__}")
    return value
