"""Micro-batching: concurrent single-story requests share one model call.

A model call has a fixed cost (tokenizing, ~80 small numpy ops) larger than the per-story cost,
so under load scoring 8 waiting stories at once costs far less than 8 calls. No timer and no
worker task: the first request of a batch schedules one ``flush`` two passes of the event loop
later (``call_soon`` twice), and every request whose handler runs before it joins the batch. At
low load a batch is one request and adds no noticeable latency; under load batches grow by
themselves (the "dynamic batching" of TF Serving and Triton, without the wait window). Two passes
give bigger batches than one, or than a queue and a worker task: the measured batch sizes are in
benchmarks/RESULTS.md, "Service".

The call runs in the event loop itself, not on a worker thread: a batch is quick, and handing it
to a thread cost more than the batch (a wake-up per batch, and the GIL bouncing between the loop
and the thread, which delayed socket writes by up to ``sys.getswitchinterval()``). While a batch
is scored, new requests wait in the socket buffers and form the next batch.

Each request carries the model it started with, so a hot reload never changes the model under a
queued request: a batch holding both models is split into one call per model.
"""

import asyncio
from collections.abc import Callable
from typing import Any

from upvote.model.bundle import UpvoteModel

Item = tuple[UpvoteModel, dict[str, Any], asyncio.Future]


class MicroBatcher:
    def __init__(
        self, score: Callable[[UpvoteModel, list[dict[str, Any]]], list], max_batch: int = 64
    ) -> None:
        self.score = score  # (model, stories) -> one result per story
        self.max_batch = max_batch
        self._pending: list[Item] = []
        self._flush_scheduled = False

    def predict(self, model: UpvoteModel, story: dict[str, Any]) -> asyncio.Future:
        """Queue ``story``; await the returned future for its result."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((model, story, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            # two hops: the handlers of requests read in the next pass over the sockets join too
            loop.call_soon(loop.call_soon, self._flush, loop)
        return future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending[: self.max_batch]
        del self._pending[: self.max_batch]
        if self._pending:  # more than max_batch waited: the rest is the next batch
            loop.call_soon(self._flush, loop)
        else:
            self._flush_scheduled = False
        for model in dict.fromkeys(m for m, _, _ in batch):  # one call per model, in order
            items = [(story, future) for m, story, future in batch if m is model]
            try:
                results = self.score(model, [story for story, _ in items])
            except Exception as error:  # each waiting request gets the error, not a hang
                for _, future in items:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(items, results, strict=True):
                if not future.done():  # the client may have gone away
                    future.set_result(result)
