"""A quick reachability probe, so an offline download fails in seconds, not minutes.

TFDS retries failed downloads for minutes.  Before asking it to download,
:mod:`pipelines.tfds_source` calls :func:`host_reachable` on each download host
of the dataset.  Tests replace ``pipelines.network.host_reachable`` (or rely on
the test suite's socket guard) to simulate an unreachable host.

Example:
    >>> host_reachable("host.invalid", timeout=0.5)
    False
"""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit

__all__ = ["PROBE_TIMEOUT_S", "host_reachable", "hosts_of"]

PROBE_TIMEOUT_S = 3.0


def host_reachable(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when a TCP connection to ``host:port`` opens within ``timeout`` seconds.

    Name resolution counts against the timeout too (it runs in a daemon thread),
    so the answer always comes within about ``timeout`` seconds.

    Example:
        >>> host_reachable("127.0.0.1", port=9, timeout=0.5)  # nothing listens there
        False
    """
    answer: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                answer.append(True)
        except Exception:  # any failure to connect means: not reachable
            answer.append(False)

    thread = threading.Thread(target=attempt, name=f"probe-{host}", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answer and answer[0])


def hosts_of(urls: list[str]) -> list[tuple[str, int]]:
    """The distinct ``(host, port)`` pairs of ``urls``, in first-seen order.

    Example:
        >>> hosts_of(["https://a.org/x", "http://b.org:8080/y", "https://a.org/z"])
        [('a.org', 443), ('b.org', 8080)]
    """
    seen: dict[tuple[str, int], None] = {}
    for url in urls:
        parts = urlsplit(url)
        if parts.hostname:
            port = parts.port or (80 if parts.scheme == "http" else 443)
            seen.setdefault((parts.hostname, port), None)
    return list(seen)
