"""Micro-batching on the real model: concurrent requests share calls, answers stay the same."""

import asyncio

import pytest

import upvote
from upvote.model.bundle import UpvoteModel
from upvote.serve.batching import MicroBatcher

TITLES = [f"Show HN: project number {i} in Rust" for i in range(24)]


@pytest.fixture(scope="module")
def model(trained_dir):
    return upvote.load_model(registry_dir=trained_dir / "models")


def test_concurrent_requests_are_batched_without_changing_answers(model):
    batch_sizes = []

    def recording_score(m, stories):
        batch_sizes.append(len(stories))
        return m.predict_records(stories)

    async def main():
        batcher = MicroBatcher(recording_score, max_batch=10)
        return await asyncio.gather(*(batcher.predict(model, {"title": t}) for t in TITLES))

    answers = asyncio.run(main())
    assert sum(batch_sizes) == len(TITLES)
    assert max(batch_sizes) == 10 and len(batch_sizes) < len(TITLES)
    alone = [model.predict_records([{"title": t}])[0] for t in TITLES]
    for got, expected in zip(answers, alone, strict=True):
        assert got["predicted_score"] == pytest.approx(expected["predicted_score"], rel=1e-5)


def test_a_failing_batch_fails_its_requests_and_the_worker_goes_on(model):
    async def main():
        batcher = MicroBatcher(UpvoteModel.predict_records)
        with pytest.raises(ValueError, match="title"):
            await batcher.predict(model, {"url": "https://example.com"})
        return await batcher.predict(model, {"title": "Still works"})

    assert asyncio.run(main())["predicted_score"] >= 0
