"""A progress callback that raises stops CPU training and the caller gets its exception: how
`upvote jobs` cancels a running job (before, the raising thread died alone and training went
on in the others)."""

import pytest

from upvote.embeddings.word2vec import train


class Stop(Exception):
    pass


def test_a_raising_progress_callback_stops_training_in_the_caller(tmp_path):
    sentences = [[f"w{(i * 7 + j) % 50}" for j in range(20)] for i in range(2_000)]
    calls = []

    def progress(words, loss):
        calls.append(words)
        if len(calls) == 3:
            raise Stop

    with pytest.raises(Stop):
        train(sentences, vector_size=8, epochs=20, min_count=1, threads=2, progress=progress,
              checkpoint_dir=tmp_path)  # fmt: skip
    # every thread stopped at once: no later epoch ran (its checkpoint would say so)
    assert not (tmp_path / "checkpoint.npz").exists()
    assert len(calls) == 3
