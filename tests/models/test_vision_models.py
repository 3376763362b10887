"""EfficientNet, MobileNet, ViT and airbench: 224 px forward/backward, their parts, the contract."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import fathom.models
from fathom.errors import ConfigError
from fathom.models.airbench import whiten_init
from fathom.models.efficientnet import MBConv
from fathom.models.mobilenet import InvertedResidual

# The smallest widths of each 224 px network, so the quick CPU subset stays quick.
LARGE_IMAGE_MODELS = {
    "efficientnet_b0": {"width": 0.25, "depth": 0.25},
    "mobilenet_v2": {"width": 0.25},
    "vit_s16": {"dim": 48, "depth": 2, "heads": 2},
    "resnet18": {"width": 0.125},
}


@pytest.mark.parametrize("name", LARGE_IMAGE_MODELS)
def test_224_pixel_forward_backward_and_contract(name: str) -> None:
    torch.manual_seed(0)
    model = fathom.models.create(
        name, in_channels=3, num_classes=5, image_size=224, **LARGE_IMAGE_MODELS[name]
    )
    inputs = torch.randn(2, 3, 224, 224)
    outputs = model(inputs)
    assert outputs.shape == (2, 5) and torch.isfinite(outputs).all()
    outputs.logsumexp(1).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    groups = model.parameter_groups()
    assert sum(map(len, groups)) == len(list(model.parameters())) and len(groups) >= 4
    model.reset_head(2)
    assert model(inputs[:1]).shape == (1, 2)


@pytest.mark.parametrize(
    ("name", "final_side"),
    [("efficientnet_b0", 7), ("mobilenet_v2", 7), ("resnet18", 7)],
)
def test_large_and_small_stems(name: str, final_side: int) -> None:
    options = LARGE_IMAGE_MODELS[name]
    large = fathom.models.create(name, image_size=224, **options).eval()
    small = fathom.models.create(name, image_size=32, **options).eval()
    spatial_large = large.features[:-2](torch.randn(1, 3, 224, 224))
    spatial_small = small.features[:-2](torch.randn(1, 3, 32, 32))
    assert spatial_large.shape[-1] == final_side
    assert spatial_small.shape[-1] == 4  # small-image stems downsample 8x, not 32x


def test_compound_scaling_multiplies_depth_and_width() -> None:
    base = fathom.models.create("efficientnet_b0")
    deeper = fathom.models.create("efficientnet_b0", depth=2.0)
    wider = fathom.models.create("efficientnet_b0", width=2.0)

    def blocks(model: torch.nn.Module) -> int:
        return sum(isinstance(module, MBConv) for module in model.modules())

    assert blocks(base) == 16 and blocks(deeper) == 32 and blocks(wider) == 16
    assert base.features[-3][0].out_channels == 1280
    assert wider.features[-3][0].out_channels == 2560
    assert 5.0e6 < sum(p.numel() for p in base.parameters()) < 5.5e6  # B0: 5.3M
    with pytest.raises(ConfigError, match="model.width"):
        fathom.models.create("efficientnet_b0", width=0)


def test_mobilenet_blocks_are_depthwise_separable() -> None:
    model = fathom.models.create("mobilenet_v2")
    assert 3.4e6 < sum(p.numel() for p in model.parameters()) < 3.6e6  # the paper's 3.4-3.5M
    blocks = [module for module in model.modules() if isinstance(module, InvertedResidual)]
    assert len(blocks) == 17 and sum(block.residual for block in blocks) == 10
    depthwise = blocks[1].block[1][0]
    assert depthwise.groups == depthwise.in_channels == depthwise.out_channels


def test_vit_attention_maps_match_the_fast_path() -> None:
    torch.manual_seed(0)
    model = fathom.models.create("vit_tiny", in_channels=1, image_size=28, depth=2).eval()
    inputs = torch.randn(3, 1, 28, 28)
    maps = model.attention_maps(inputs)
    assert len(maps) == 2 and maps[0].shape == (3, 3, 50, 50)  # heads 3, 7x7 patches + class
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(3, 3, 50))
    # The explicit softmax weights reproduce what scaled_dot_product_attention computed.
    attention = model.features[1].attention
    tokens = model.features[1].norm1(model.features[0](inputs))
    _, _, value = attention._split(tokens)
    explicit = attention.projection((maps[0] @ value).transpose(1, 2).flatten(2))
    torch.testing.assert_close(explicit, attention(tokens), atol=1e-5, rtol=1e-4)


def test_vit_pads_images_to_whole_patches() -> None:
    model = fathom.models.create("vit_s16", image_size=20, dim=32, depth=1, heads=2)
    assert model.features[0].grid == (2, 2)
    assert model(torch.randn(2, 3, 20, 20)).shape == (2, 1000)
    with pytest.raises(ConfigError, match="multiple of model.heads"):
        fathom.models.create("vit_tiny", dim=100, heads=3)


def test_airbench_whitening_decorrelates_patches() -> None:
    torch.manual_seed(0)
    mixing = torch.tensor([[1.0, 0.8, 0.6], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    images = torch.einsum("dc,nchw->ndhw", mixing, torch.randn(64, 3, 16, 16))
    model = fathom.models.create("airbench", image_size=16, widths=(8, 8, 8))
    whiten_init(model, images)
    conv = model.features[0]
    outputs = F.conv2d(images, conv.weight[:12]).permute(1, 0, 2, 3).flatten(1)
    covariance = outputs @ outputs.T / outputs.shape[1]
    torch.testing.assert_close(covariance, torch.eye(12), atol=0.02, rtol=0)
    assert not conv.weight.requires_grad


def test_airbench_whitens_on_its_first_training_batch_only() -> None:
    model = fathom.models.create("airbench", image_size=16, widths=(8, 8, 8), whiten=True)
    before = model.features[0].weight.clone()
    model.eval()(torch.randn(4, 3, 16, 16))
    assert torch.equal(model.features[0].weight, before) and model.pending_whitening
    model.train()(torch.randn(8, 3, 16, 16))
    after = model.features[0].weight.clone()
    assert not torch.equal(after, before) and bool(model.whitened)
    model(torch.randn(8, 3, 16, 16))
    assert torch.equal(model.features[0].weight, after)
    restored = fathom.models.create("airbench", image_size=16, widths=(8, 8, 8), whiten=True)
    restored.load_state_dict(model.state_dict())
    assert not restored.pending_whitening
