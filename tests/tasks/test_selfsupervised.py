"""Self-supervised image tasks: NT-Xent, BYOL's target, the kNN classifier and the views,
each against a slow reference written with explicit loops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fathom import models
from fathom.data.bundle import DataInfo
from fathom.errors import ConfigError, DataError
from fathom.tasks import create_for_data
from fathom.tasks.byol import BYOL, momentum_at
from fathom.tasks.knn import knn_predict
from fathom.tasks.simclr import nt_xent
from fathom.tasks.views import ViewMaker, resized_crop

GREY = DataInfo(name="toy", task="classification", input_shape=(1, 8, 8), num_classes=3)


def slow_nt_xent(first: torch.Tensor, second: torch.Tensor, temperature: float) -> float:
    """NT-Xent as SimCLR's paper writes it: one term per view, a loop over every other view."""
    views = [F.normalize(v, dim=0) for v in [*first, *second]]
    count, total = len(first), 0.0
    for i in range(2 * count):
        partner = (i + count) % (2 * count)
        similarity = [float(views[i] @ views[k]) / temperature for k in range(2 * count)]
        denominator = sum(math.exp(similarity[k]) for k in range(2 * count) if k != i)
        total += -math.log(math.exp(similarity[partner]) / denominator)
    return total / (2 * count)


def test_nt_xent_equals_a_slow_reference_on_a_small_batch() -> None:
    generator = torch.Generator().manual_seed(0)
    first, second = torch.randn(2, 5, 7, generator=generator, dtype=torch.float64)
    for temperature in (0.1, 0.5, 1.0):
        fast = float(nt_xent(first, second, temperature))
        assert fast == pytest.approx(slow_nt_xent(first, second, temperature), rel=1e-5)
    # Identical views far from the others: the loss approaches its minimum, 0.
    spread = torch.eye(4) * 10
    assert float(nt_xent(spread, spread, 0.05)) < 1e-6


def slow_knn(queries, bank, labels, classes, k, temperature) -> list[int]:
    predictions = []
    for query in queries:
        query = F.normalize(query, dim=0)
        pairs = zip(bank, labels, strict=True)
        similarity = [(float(query @ row), int(label)) for row, label in pairs]
        nearest = sorted(similarity, key=lambda pair: -pair[0])[:k]
        votes = [0.0] * classes
        for value, label in nearest:
            votes[label] += math.exp(value / temperature)
        predictions.append(max(range(classes), key=lambda c: votes[c]))
    return predictions


def test_weighted_knn_matches_a_brute_force_reference() -> None:
    generator = torch.Generator().manual_seed(1)
    bank = F.normalize(torch.randn(60, 5, generator=generator), dim=1)
    labels = torch.randint(0, 4, (60,), generator=generator)
    queries = torch.randn(25, 5, generator=generator)
    for k in (1, 7, 200):
        fast = knn_predict(queries, bank, labels, 4, k=k, temperature=0.1).tolist()
        assert fast == slow_knn(queries, bank, labels, 4, k, 0.1)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # precision auto: still float32
            assert knn_predict(queries, bank, labels, 4, k=k, temperature=0.1).tolist() == fast


def byol_with_model() -> tuple[BYOL, torch.nn.Module]:
    torch.manual_seed(0)
    model = models.create("cnn", in_channels=1, num_classes=3, image_size=8, channels=[4], hidden=0)
    task = BYOL(GREY, momentum=0.9, projection_dim=4, projection_hidden=8)
    task.optimizer_groups(model)  # builds the heads and the target
    return task, model


def test_byol_target_update_is_the_ema_formula_and_the_target_gets_no_gradient() -> None:
    task, model = byol_with_model()
    target = task.heads["target"]
    for parameter in model.features.parameters():  # move the online network away
        parameter.data.add_(1.0)
    before = [p.clone() for p in target["backbone"].parameters()]
    online = [p.clone() for p in model.features.parameters()]
    task.update_target(model, 0.75)
    for new, old, leader in zip(target["backbone"].parameters(), before, online, strict=True):
        assert torch.allclose(new, 0.75 * old + 0.25 * leader, atol=1e-6)
    images = torch.randn(6, 1, 8, 8)
    loss, _ = task.training_loss("main", model, (images, torch.zeros(6, dtype=torch.long)))
    loss.backward()
    assert all(p.grad is None for p in target.parameters())
    assert all(not p.requires_grad for p in target.parameters())
    assert all(p.grad is not None for p in task.heads["predictor"].parameters())
    assert all(p.grad is None for p in model.head.parameters())  # the classifier head stays
    trained = {id(p) for p in task.optimizer_groups(model)["main"]}
    assert not trained & {id(p) for p in target.parameters()}


def test_momentum_rises_from_its_base_to_one_along_a_cosine() -> None:
    assert momentum_at(0.99, 0, 100) == pytest.approx(0.99)
    assert momentum_at(0.99, 50, 100) == pytest.approx(0.995)
    assert momentum_at(0.99, 100, 100) == pytest.approx(1.0)


def test_views_are_random_per_image_seeded_and_keep_the_shape() -> None:
    images = torch.randn(4, 3, 16, 16)
    maker = ViewMaker()
    first = maker.views(images, torch.Generator().manual_seed(3))
    again = maker.views(images, torch.Generator().manual_seed(3))
    assert first[0].shape == images.shape and torch.equal(first[0], again[0])
    assert not torch.equal(first[0], first[1])
    grey = maker.view(torch.randn(4, 1, 8, 8), torch.Generator().manual_seed(0))
    assert grey.shape == (4, 1, 8, 8)
    ramp = torch.linspace(0, 1, 16).expand(4, 3, 16, 16)  # a crop of a ramp is a ramp in it
    cropped = resized_crop(ramp, 0.25, torch.Generator().manual_seed(0))
    assert cropped.min() >= 0 and cropped.max() <= 1 and (cropped.diff(dim=3) >= -1e-6).all()
    spans = cropped[:, 0, 0, -1] - cropped[:, 0, 0, 0]
    assert (spans < 0.99).all() and (spans > 0.3).all()  # zoomed in, by at most 1/sqrt(0.25*3/4)


def test_bad_options_and_non_image_data_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="task.temperature must be in"):
        create_for_data("simclr", GREY, temperature=0)
    with pytest.raises(ConfigError, match="task.momentum"):
        create_for_data("byol", GREY, momentum=1.5)
    with pytest.raises(ConfigError, match="temprature"):
        create_for_data("simclr", GREY, temprature=0.5)
    table = DataInfo(name="csv", task="classification", input_shape=(6,), num_classes=2)
    with pytest.raises(DataError, match="task simclr learns from images"):
        create_for_data("simclr", table)
    task = create_for_data("simclr", GREY)
    with pytest.raises(ConfigError, match="has no .features"):
        task.optimizer_groups(torch.nn.Linear(64, 3))


@pytest.mark.parametrize("recipe", ["mnist-simclr", "mnist-byol", "cifar10-simclr", "cifar10-byol"])
def test_self_supervised_recipes_build_a_backbone_and_the_task_heads(recipe: str) -> None:
    from fathom.assemble import build_model, make_task, resolve_config

    config = resolve_config({"recipe": recipe})
    shape = (1, 28, 28) if config.data.name == "mnist" else (3, 32, 32)
    info = DataInfo(config.data.name, "classification", shape, num_classes=10)
    model, task = build_model(config, info), make_task(config, info)
    assert task.name == recipe.split("-")[1] and task.monitor == "knn_accuracy"
    trained = {id(p) for p in task.optimizer_groups(model)["main"]}
    assert {id(p) for p in model.features.parameters()} <= trained
    assert not trained & {id(p) for p in model.head.parameters()}  # the classifier head waits


def test_a_task_name_picks_the_dataset_task_recipe() -> None:
    from fathom.assemble import resolve_config

    assert resolve_config(dataset="mnist", overrides=["task.name=simclr"]).recipe == "mnist-simclr"
    assert resolve_config(dataset="cifar10", overrides=["task.name=byol"]).recipe == "cifar10-byol"
    assert resolve_config(dataset="mnist").recipe == "mnist"
    assert resolve_config(dataset="digits", overrides=["task.name=simclr"]).recipe == "digits"
