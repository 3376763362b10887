"""Doctor rules on hand-made records: each fires on its evidence and stays silent otherwise."""

from __future__ import annotations

import math

from fathom.diagnosis.doctor import diagnose_records, format_diagnoses


def sample(step, **layers):
    return {"kind": "sample", "step": step, "layers": layers}


def train_record(loss, accuracy=0.99, lr=1e-3):
    return {"kind": "train", "loss": loss, "accuracy": accuracy, "lr": lr}


def val_record(loss, accuracy=0.98, epoch=1):
    return {"kind": "val", "loss": loss, "accuracy": accuracy, "epoch": epoch}


HEALTHY_LAYER = {"grad_norm": 0.3, "update_ratio": 3e-3, "std": 1.0}
DATA = {
    "kind": "data",
    "class_counts": [100, 100, 100],
    "scale": {
        "mean": 0,
        "std": 1,
        "feature_mean_abs_max": 0.1,
        "feature_std_max": 1.0,
        "feature_std_min": 1.0,
        "max_abs": 3,
    },
}


def healthy_records():
    samples = [
        sample(s, a=HEALTHY_LAYER, r={"dead": 0.1}, b=HEALTHY_LAYER, c=HEALTHY_LAYER)
        for s in range(1, 20, 5)
    ]
    metrics = [train_record(1.0 / (i + 1)) for i in range(6)] + [
        val_record(0.3, epoch=i) for i in range(6)
    ]
    return [DATA, *samples], metrics


def keys(diagnostics, metrics, task="classification"):
    return [d.key for d in diagnose_records(diagnostics, metrics, task)]


def test_healthy_records_give_no_diagnosis():
    assert keys(*healthy_records()) == []
    assert format_diagnoses([]) == "doctor: no problems found"


def test_each_rule_fires_on_its_evidence():
    diagnostics, metrics = healthy_records()
    vanishing = [
        sample(1, a={**HEALTHY_LAYER, "grad_norm": 1e-7}, b=HEALTHY_LAYER, c=HEALTHY_LAYER)
    ]
    assert keys([DATA, *vanishing], metrics) == ["vanishing_gradients"]
    exploding = [sample(1, a={**HEALTHY_LAYER, "grad_norm": 5e3}, b=HEALTHY_LAYER, c=HEALTHY_LAYER)]
    assert keys([DATA, *exploding], metrics) == ["exploding_gradients"]
    dead = [sample(1, a=HEALTHY_LAYER, r={"dead": 0.9})]
    assert keys([DATA, *dead], metrics) == ["dead_relus"]
    scaled = {**DATA, "scale": {**DATA["scale"], "feature_std_max": 900.0}}
    assert keys([scaled, *diagnostics[1:]], metrics) == ["unnormalised_inputs"]
    rare = {**DATA, "class_counts": [300, 300, 6]}
    assert keys([rare, *diagnostics[1:]], metrics) == ["class_imbalance"]
    leak = {**DATA, "duplicates": {"test": {"rows": 100, "in_train": 40, "first": [1, 2]}}}
    assert keys([leak, *diagnostics[1:]], metrics) == ["leakage"]
    noisy = {"kind": "examples", "count": 500, "confidently_wrong": 0.25, "top": [{"index": 3}]}
    assert keys([*diagnostics, noisy], metrics) == ["label_noise"]
    stalled = [train_record(math.log(3) * 0.98) for _ in range(6)]
    slow = [sample(s, a={**HEALTHY_LAYER, "update_ratio": 1e-6}) for s in range(3)]
    found = diagnose_records([DATA, *slow], stalled + metrics[6:])
    assert [d.key for d in found] == ["lr_too_low"] and found[0].overrides[0].startswith(
        "optim.lr="
    )
    fast = [sample(s, a={**HEALTHY_LAYER, "update_ratio": 5.0}) for s in range(3)]
    assert keys([DATA, *fast], stalled + metrics[6:]) == ["lr_too_high"]


def test_overfitting_underfitting_and_non_finite():
    diagnostics, _ = healthy_records()
    rising = [val_record(loss, epoch=i) for i, loss in enumerate([0.5, 0.3, 0.35, 0.5, 0.7, 0.9])]
    falling = [train_record(0.5 / (i + 1) ** 2) for i in range(6)]
    assert keys(diagnostics, falling + rising) == ["overfitting"]
    # The embedded default's pattern: 0.023 -> 0.052 while training loss -> 4e-4 (test 99.4%):
    # 2.2x, but 0.03 nats per example is no problem worth a remedy.
    confident = [
        val_record(loss, epoch=i) for i, loss in enumerate([0.1, 0.023, 0.03, 0.04, 0.052])
    ]
    tiny = [train_record(0.1 / 10**i) for i in range(6)]
    assert keys(diagnostics, tiny + confident) == []
    weak = [train_record(1.0, accuracy=0.4) for _ in range(6)] + [val_record(1.0, 0.38)]
    assert keys(diagnostics, weak) == ["underfitting"]
    failed = {"kind": "nonfinite", "step": 7, "first_layer": "features.2.0 (Linear)"}
    found = diagnose_records([*diagnostics, failed], falling)
    assert [d.key for d in found] == ["non_finite"] and "features.2.0" in found[0].evidence


def test_label_noise_names_the_examples_as_the_user_finds_them():
    import torch
    from torch import nn

    from fathom.data.bundle import Split
    from fathom.diagnosis.datachecks import example_losses

    split = Split(torch.eye(4), torch.tensor([0, 1, 2, 0]), rows=torch.tensor([2, 3, 5, 9]))
    model = nn.Linear(4, 3)
    with torch.no_grad():  # predicts the class of the input's position, so row 9 is wrong
        model.weight.copy_(10 * torch.eye(3, 4))
        model.bias.zero_()
    record = example_losses(model, split, torch.device("cpu"))
    assert record["top"][0]["index"] == 3 and record["top"][0]["row"] == 9
    diagnostics, metrics = healthy_records()
    noisy = {"kind": "examples", "count": 500, "confidently_wrong": 0.25, "top": record["top"]}
    found = diagnose_records([*diagnostics, {**noisy, "source": "labels.csv"}], metrics)
    assert "highest-loss lines of labels.csv: 9, " in found[0].evidence
    files = [{**item, "file": f"img/{item['row']}.png"} for item in record["top"]]
    found = diagnose_records([*diagnostics, {**noisy, "top": files}], metrics)
    assert "highest-loss files: img/9.png, " in found[0].evidence
    names = [{**item, "row": -1} if item["row"] == 9 else item for item in record["top"]]
    found = diagnose_records([*diagnostics, {**noisy, "top": names, "source": "t.csv"}], metrics)
    assert "lines of t.csv: a class name (data.class_name_examples), " in found[0].evidence
