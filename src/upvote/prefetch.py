"""Read ahead in a thread: the next chunk or batch is read while this one is processed.

Shared by the data layer (a database pull: the next batch arrives while this one is cleaned and
written) and corpus encoding (the next chunk is decompressed and split while this one is counted);
both sides release the GIL for most of their work, so the two overlap on two cores.
"""

import contextlib
import threading
from collections.abc import Iterable, Iterator
from queue import Empty, Full, Queue
from typing import TypeVar

T = TypeVar("T")


def prefetch(items: Iterable[T], depth: int = 2, name: str = "upvote-reader") -> Iterator[T]:
    """``items``, produced by a thread up to ``depth`` ahead. An error in the thread is raised
    here; leaving the loop early stops the thread and closes ``items`` (a generator's file or
    connection). At most depth + 2 items are alive at once: the one used here, depth queued, one
    being produced."""
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        queue.put((item, None), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put((done, None))
        except BaseException as error:  # handed to the consumer
            queue.put((done, error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item, error = queue.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(Empty):
                queue.get(timeout=0.1)
        thread.join()
