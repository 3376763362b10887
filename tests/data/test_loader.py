import torch

from fathom.data.bundle import Split
from fathom.data.loader import StreamingLoader, TensorLoader


def split(count: int = 103) -> Split:
    return Split(torch.arange(count, dtype=torch.float32)[:, None], torch.arange(count))


def test_seeded_shuffle_covers_every_example_once_per_epoch():
    loader = TensorLoader(split(), 10, shuffle=True, seed=3)
    first = torch.cat([targets for _, targets in loader])
    second = torch.cat([targets for _, targets in loader])
    assert sorted(first.tolist()) == list(range(103)) == sorted(second.tolist())
    assert not torch.equal(first, second)
    again = TensorLoader(split(), 10, shuffle=True, seed=3)
    assert torch.equal(torch.cat([targets for _, targets in again]), first)


def test_position_restores_mid_epoch():
    loader = TensorLoader(split(), 10, shuffle=True, seed=1)
    next(iter(loader))  # epoch 0
    list(loader)
    iterator = iter(loader)
    seen = [next(iterator)[1] for _ in range(4)]
    state = loader.state_dict()
    rest = [targets for _, targets in iterator]
    restored = TensorLoader(split(), 10, shuffle=True, seed=1)
    restored.load_state_dict(state)
    assert state["position"] == 4 and len(seen) == 4
    assert all(torch.equal(a, b) for a, b in zip(rest, (t for _, t in restored), strict=True))


def test_augmentation_generator_depends_on_epoch_and_batch_only():
    def noise(inputs, targets, generator):
        return inputs + torch.rand(inputs.shape, generator=generator), targets

    a = TensorLoader(split(), 10, shuffle=True, seed=0, transform=noise)
    b = TensorLoader(split(), 10, shuffle=True, seed=0, transform=noise)
    b.load_state_dict({"epoch": 0, "position": 5})
    assert torch.equal(list(a)[5][0], next(iter(b))[0])


def test_single_example_final_batch_is_dropped_when_shuffling():
    assert len(TensorLoader(split(101), 10, shuffle=True)) == 10
    assert len(TensorLoader(split(101), 10, shuffle=False)) == 11


class LazyNumbers:
    def __init__(self, count: int) -> None:
        self.targets = torch.arange(count)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return torch.tensor([float(index)]), self.targets[index]


def test_streaming_loader_serves_the_same_batches_as_the_tensor_loader():
    tensor = TensorLoader(split(), 16, shuffle=True, seed=2)
    streaming = StreamingLoader(LazyNumbers(103), 16, shuffle=True, seed=2, workers=0)
    for (x1, y1), (x2, y2) in zip(tensor, streaming, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    streaming.load_state_dict({"epoch": 1, "position": 3})
    tensor.load_state_dict({"epoch": 1, "position": 3})
    assert torch.equal(next(iter(streaming))[1], next(iter(tensor))[1])
