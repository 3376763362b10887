"""The micro-batcher on its own: a lone request runs at once; requests that queue while the model
runs go together into the next call; ``max_wait_ms`` waits for more after the first."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from fathom.serving.batcher import MicroBatcher


class GatedModel:
    """Records the size of every call; the first call holds the model until ``release``."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.running, self.release = threading.Event(), threading.Event()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.running.set()
        self.calls.append(len(batch))
        self.release.wait(timeout=600)  # only stops a hang
        return batch * 2


async def serve(model: GatedModel, batches: list[np.ndarray]) -> list[np.ndarray]:
    """Submit the first batch; once the model runs it, queue the rest, then let it finish."""
    batcher = MicroBatcher(model, max_batch=8)
    batcher.start()
    try:
        first = asyncio.ensure_future(batcher.submit(batches[0]))
        while not model.running.is_set():
            await asyncio.sleep(0.001)
        rest = [asyncio.ensure_future(batcher.submit(batch)) for batch in batches[1:]]
        while batcher.queued < sum(len(batch) for batch in batches[1:]):
            await asyncio.sleep(0.001)
        model.release.set()
        return await asyncio.gather(first, *rest)
    finally:
        await batcher.stop()


def test_requests_queued_while_the_model_runs_share_the_next_call() -> None:
    model = GatedModel()
    inputs = [np.full((1, 3), float(i), dtype=np.float32) for i in range(6)]
    outputs = asyncio.run(serve(model, inputs))
    assert model.calls == [1, 5]  # the lone first request did not wait for company
    for given, answer in zip(inputs, outputs, strict=True):
        np.testing.assert_array_equal(answer, given * 2)


def test_a_batch_never_exceeds_max_batch() -> None:
    model = GatedModel()
    inputs = [np.zeros((3, 2), dtype=np.float32) for _ in range(5)]
    asyncio.run(serve(model, inputs))
    assert model.calls[0] == 3 and all(size <= 8 for size in model.calls)
    assert sum(model.calls) == 15 and model.calls[1:] == [6, 6]


def test_max_wait_gathers_requests_that_arrive_after_the_first() -> None:
    async def staggered(max_wait_ms: float) -> list[int]:
        model = GatedModel()
        model.release.set()
        batcher = MicroBatcher(model, max_batch=8, max_wait_ms=max_wait_ms)
        batcher.start()
        try:
            first = asyncio.ensure_future(batcher.submit(np.zeros((1, 1), dtype=np.float32)))
            await asyncio.sleep(0.05)
            await asyncio.gather(first, batcher.submit(np.zeros((1, 1), dtype=np.float32)))
        finally:
            await batcher.stop()
        return model.calls

    assert asyncio.run(staggered(0.0)) == [1, 1]
    assert asyncio.run(staggered(2_000.0)) == [2]
