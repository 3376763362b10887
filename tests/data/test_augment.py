"""Batched augmentation: correctness of each transform, reproducibility, config errors."""

from __future__ import annotations

import pytest
import torch

from fathom.data.augment import (
    ColorJitter,
    Compose,
    CutMix,
    Cutout,
    HorizontalFlip,
    Mixup,
    RandomAffine,
    RandomChoice,
    RandomCrop,
    build_augmentation,
)
from fathom.errors import ConfigError

FULL_SPEC = {
    "crop": True,
    "flip": True,
    "affine": True,
    "jitter": True,
    "cutout": {"size": 4},
    "mixup": True,
}


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(count: int = 8, channels: int = 3, size: int = 8) -> torch.Tensor:
    """Distinct non-zero pixel values, so a shift or a zero fill is easy to tell apart."""
    return torch.arange(1, count * channels * size * size + 1, dtype=torch.float32).view(
        count, channels, size, size
    )


def labels(count: int = 8, classes: int = 5) -> torch.Tensor:
    return torch.arange(count) % classes


def test_flip_twice_with_p_one_is_identity() -> None:
    inputs, flip = images(), HorizontalFlip(p=1.0)
    once, _ = flip(inputs, labels(), seeded())
    assert torch.equal(once, inputs.flip(3))
    twice, _ = flip(once, labels(), seeded(1))
    assert torch.equal(twice, inputs)
    assert torch.equal(HorizontalFlip(p=0.0)(inputs, labels(), seeded())[0], inputs)


def shifted(image: torch.Tensor, down: int, right: int) -> torch.Tensor:
    """``image`` moved by (down, right) pixels, zeros coming in at the edges."""
    height, width = image.shape[-2:]
    result = torch.zeros_like(image)
    result[..., max(down, 0) : height + min(down, 0), max(right, 0) : width + min(right, 0)] = (
        image[..., max(-down, 0) : height - max(down, 0), max(-right, 0) : width - max(right, 0)]
    )
    return result


def test_crop_keeps_shape_and_is_a_shifted_copy() -> None:
    inputs, padding = images(count=16), 3
    cropped, targets = RandomCrop(padding)(inputs, labels(16), seeded())
    assert cropped.shape == inputs.shape and torch.equal(targets, labels(16))
    offsets = set()
    for image, result in zip(inputs, cropped, strict=True):
        matches = [
            (down, right)
            for down in range(-padding, padding + 1)
            for right in range(-padding, padding + 1)
            if torch.equal(result, shifted(image, down, right))
        ]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > 4
    assert torch.equal(RandomCrop(0)(inputs, labels(), seeded())[0], inputs)


def test_same_seed_same_batch_different_seed_different_batch() -> None:
    transform = build_augmentation(FULL_SPEC, num_classes=5)
    inputs = torch.randn(16, 3, 12, 12)
    first = transform(inputs, labels(16), seeded(7))
    again = transform(inputs, labels(16), seeded(7))
    other = transform(inputs, labels(16), seeded(8))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


@pytest.mark.parametrize(
    "transform", [Mixup(alpha=0.4, num_classes=5), CutMix(alpha=1.0, num_classes=5)]
)
def test_mixing_gives_soft_targets_matching_the_mixed_pixels(transform: Mixup | CutMix) -> None:
    targets = labels(32)
    # Each pixel of an image is its one-hot label, so a mixed image's mean is its mixed label.
    inputs = torch.nn.functional.one_hot(targets, 5).float()[:, :, None, None].expand(32, 5, 6, 6)
    for seed in range(5):
        mixed, soft = transform(inputs, targets, seeded(seed))
        assert soft.shape == (32, 5) and soft.dtype == torch.float32
        torch.testing.assert_close(soft.sum(1), torch.ones(32))
        torch.testing.assert_close(mixed.mean(dim=(2, 3)), soft)
    again, soft_again = transform(mixed, soft, seeded(9))
    torch.testing.assert_close(soft_again.sum(1), torch.ones(32))


def test_mixup_works_on_tabular_inputs_and_needs_classes_for_labels() -> None:
    inputs = torch.randn(10, 4)
    mixed, soft = Mixup(num_classes=3)(inputs, labels(10, 3), seeded())
    assert mixed.shape == (10, 4) and soft.shape == (10, 3)
    with pytest.raises(ConfigError, match="num_classes"):
        Mixup()(inputs, labels(10, 3), seeded())


def test_cutout_zeros_the_sampled_square() -> None:
    transform, size = Cutout(size=4), 10
    inputs = torch.ones(32, 2, size, size)
    erased, _ = transform(inputs, labels(32), seeded(3))
    top, left = transform.sample_boxes(32, size, size, seeded(3), inputs.device)
    for index in range(32):
        expected = torch.ones(size, size)
        rows = slice(max(int(top[index]), 0), max(int(top[index]) + 4, 0))
        columns = slice(max(int(left[index]), 0), max(int(left[index]) + 4, 0))
        expected[rows, columns] = 0
        assert torch.equal(erased[index, 0], expected) and torch.equal(erased[index, 1], expected)
    zeros = (erased[:, 0] == 0).sum(dim=(1, 2))
    assert zeros.max() == 16 and zeros.min() >= 4


def test_identity_affine_leaves_images_alone() -> None:
    inputs = torch.randn(4, 3, 9, 13)
    moved, _ = RandomAffine(degrees=0, translate=0, scale=(1, 1))(inputs, labels(4), seeded())
    torch.testing.assert_close(moved, inputs, atol=1e-5, rtol=0)
    rotated, _ = RandomAffine(degrees=30)(inputs, labels(4), seeded())
    assert rotated.shape == inputs.shape and torch.isfinite(rotated).all()


def test_colour_jitter_parts() -> None:
    inputs = torch.randn(6, 3, 5, 5)
    brighter, _ = ColorJitter(brightness=0.3, contrast=0, saturation=0)(inputs, labels(6), seeded())
    shift = (brighter - inputs).flatten(1)
    torch.testing.assert_close(shift, shift[:, :1].expand_as(shift))
    assert shift.abs().max() <= 0.3
    contrasted, _ = ColorJitter(brightness=0, contrast=0.5, saturation=0)(
        inputs, labels(6), seeded()
    )
    torch.testing.assert_close(contrasted.mean(dim=(1, 2, 3)), inputs.mean(dim=(1, 2, 3)))
    grey = torch.randn(6, 1, 5, 5)
    assert torch.equal(ColorJitter(brightness=0, contrast=0)(grey, labels(6), seeded())[0], grey)


def test_build_order_and_switching() -> None:
    assert build_augmentation({}, 10) is None
    assert build_augmentation({"flip": False, "crop": None}, 10) is None
    spec = {
        "cutmix": True,
        "mixup": {"alpha": 0.5},
        "cutout": True,
        "flip": {"p": 1.0},
        "crop": {"padding": 2},
    }
    transforms = build_augmentation(spec, num_classes=10).transforms
    assert [type(t) for t in transforms] == [RandomCrop, HorizontalFlip, Cutout, RandomChoice]
    assert transforms[0].padding == 2 and transforms[1].p == 1.0
    mixers = transforms[-1].transforms
    assert [type(t) for t in mixers] == [Mixup, CutMix] and mixers[0].alpha == 0.5
    assert mixers[0].num_classes == 10
    assert isinstance(build_augmentation({"flip": True}, None), Compose)


def test_mixup_and_cutmix_take_turns() -> None:
    choice = build_augmentation({"mixup": True, "cutmix": True}, num_classes=5).transforms[-1]
    targets = labels(16)
    inputs = torch.nn.functional.one_hot(targets, 5).float()[:, :, None, None].expand(16, 5, 6, 6)
    pasted = []
    for seed in range(12):
        mixed, soft = choice(inputs, targets, seeded(seed))
        torch.testing.assert_close(mixed.mean(dim=(2, 3)), soft)
        pasted.append(bool(((mixed == 0) | (mixed == 1)).all()))  # CutMix copies pixels whole
    assert any(pasted) and not all(pasted)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"flp": True}, "data.augment.flp.*did you mean 'flip'"),
        ({"crop": {"pading": 2}}, "data.augment.crop.*did you mean 'padding'"),
        ({"crop": 4}, "data.augment.crop must be true, false or a mapping"),
        ({"flip": {"p": 2}}, "data.augment.flip: p must be"),
        ({"affine": {"scale": 1.1}}, r"data.augment.affine.scale: expected a list, got 1.1"),
        ({"jitter": {"contrast": -1}}, "data.augment.jitter: contrast"),
        ({"cutout": {"size": 0}}, "data.augment.cutout: size"),
    ],
)
def test_bad_spec_is_a_config_error(spec: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_augmentation(spec, num_classes=10)


def test_image_transform_on_tabular_data_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="data.augment.crop needs image batches"):
        RandomCrop()(torch.randn(8, 14), labels(), seeded())
