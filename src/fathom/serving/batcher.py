"""Dynamic micro-batching: requests queued and run together, up to ``max_batch`` examples.

A batch is whatever queued while the model ran the previous one, so an idle server answers a lone
request at once (no added latency) and a busy one runs full batches. ``max_wait_ms`` > 0 also
waits that long after a batch's first request for more to arrive (bigger batches at low load, at
the price of that much latency on every request).

Written here rather than taken from a library: the serving libraries that batch (LitServe, Ray
Serve, Triton) bring their own server; this is one asyncio task in front of one model thread.
The model runs in a single worker thread (PyTorch and ONNX Runtime release the GIL), so the
event loop keeps accepting and queueing requests while a batch runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

Pending = tuple[np.ndarray, "asyncio.Future[np.ndarray]"]


class Overloaded(Exception):
    """More examples are queued than the server accepts."""


class MicroBatcher:
    """Groups submitted batches into model calls of at most ``max_batch`` examples."""

    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        max_batch: int = 32,
        max_wait_ms: float = 0.0,
        max_queued: int = 4096,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_queued = max_queued
        self.on_batch = on_batch
        self.queued = 0
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fathom-model")
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Finish what is queued, then stop (requests in flight get their answers)."""
        while self.queued and self.running:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def submit(self, inputs: np.ndarray) -> np.ndarray:
        """The model's outputs for ``inputs`` (one request), computed with whatever else queued."""
        if self.queued + len(inputs) > self.max_queued:
            raise Overloaded(f"{self.queued} examples already queued")
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self.queued += len(inputs)
        try:
            self._queue.put_nowait((inputs, future))
            return await future
        finally:
            if not future.done():
                future.cancel()  # the caller gave up (timeout): the batch skips it

    async def _collect(self, first: Pending) -> tuple[list[Pending], Pending | None]:
        """``first`` plus what arrives before the batch is full or the wait is over; the item
        that would overflow the batch is handed back for the next one."""
        batch, count = [first], len(first[0])
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while count < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            if count + len(item[0]) > self.max_batch:
                return batch, item
            batch.append(item)
            count += len(item[0])
        return batch, None

    async def _loop(self) -> None:
        carried: Pending | None = None
        loop = asyncio.get_running_loop()
        while True:
            first = carried if carried is not None else await self._queue.get()
            batch, carried = await self._collect(first)
            live = [(inputs, future) for inputs, future in batch if not future.done()]
            self.queued -= sum(len(inputs) for inputs, _ in batch)
            if not live:
                continue
            joined = np.concatenate([inputs for inputs, _ in live])
            if self.on_batch is not None:
                self.on_batch(len(joined))
            try:
                outputs = await loop.run_in_executor(self._executor, self.predict, joined)
            except Exception as error:  # a model failure answers every waiting request
                for _, future in live:
                    if not future.done():
                        future.set_exception(error)
                continue
            start = 0
            for inputs, future in live:
                if not future.done():
                    future.set_result(outputs[start : start + len(inputs)])
                start += len(inputs)
