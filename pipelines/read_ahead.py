"""Reading ahead on a thread of one's own: :func:`read_ahead`.

Example:
    >>> list(read_ahead(iter(range(3))))
    [0, 1, 2]
"""

from __future__ import annotations

import atexit
import queue
import threading
import weakref
from collections.abc import Iterator
from typing import Any

__all__ = ["read_ahead"]


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """``items`` produced by a daemon thread up to ``depth`` ahead of the consumer
    (its exceptions re-raised in the consumer), stopped when the consumer stops.

    Hand-written because ``tf.data``'s own prefetch would run the reading (a Python
    generator, ``Dataset.from_generator``) on TensorFlow's threads, which hang the
    interpreter's exit while an iterator is left open; a daemon thread does not.

    Example:
        >>> list(read_ahead(iter(range(5))))
        [0, 1, 2, 3, 4]
    """
    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop, done = threading.Event(), object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as error:  # handed to the consumer, which raises it
            put(_Failure(error))

    thread = threading.Thread(target=produce, daemon=True, name="kerasdnn-read-ahead")
    _READERS[thread] = stop
    thread.start()
    try:
        while (item := buffer.get()) is not done:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()


_READERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


@atexit.register
def _stop_readers() -> None:
    """Stop and join the reading threads before the interpreter exits: a thread still
    inside Arrow's C++ while its statics are destroyed aborts the process."""
    for thread, stop in list(_READERS.items()):
        stop.set()
        thread.join(timeout=10)
