"""``data.eval_limit``: seeded subsets of the validation and test splits, the same each load."""

from __future__ import annotations

import torch

import fathom


def test_eval_limit_caps_validation_and_test_with_a_seed() -> None:
    whole = fathom.data.load("digits", seed=3)
    capped = fathom.data.load("digits", seed=3, eval_limit=50)
    assert len(capped.val) == len(capped.test) == 50 and len(capped.train) == len(whole.train)
    again = fathom.data.load("digits", seed=3, eval_limit=50)
    assert torch.equal(capped.test.rows, again.test.rows)  # seeded: the same rows each load
    assert set(capped.test.rows.tolist()) <= set(whole.test.rows.tolist())
    other = fathom.data.load("digits", seed=4, eval_limit=50)
    assert not torch.equal(capped.test.rows, other.test.rows)
    # a split smaller than the limit is kept whole; statistics come from the training split only
    roomy = fathom.data.load("digits", seed=3, eval_limit=10_000)
    assert len(roomy.test) == len(whole.test)
    assert capped.info.normalization == whole.info.normalization


def test_a_run_records_its_eval_limit_and_reloads_the_same_split(tmp_path) -> None:
    run = fathom.fit(
        None, "digits",
        overrides=["model.name=mlp", "train.epochs=1", "data.eval_limit=40", "run.report=false",
                   f"run.dir={tmp_path}", "run.progress=none"],
    )  # fmt: skip
    assert run.config.data.eval_limit == 40
    reloaded = fathom.load(run.path)
    assert reloaded.evaluate("test") == run.summary["test"]
    assert len(reloaded.data.test) == 40 and not (run.path / "report.html").exists()
