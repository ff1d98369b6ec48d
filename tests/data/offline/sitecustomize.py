"""Put on PYTHONPATH of a test's subprocess: no connection leaves this machine.

The subprocess twin of the socket guard in tests/conftest.py (name lookups too),
so that a command run by a test sees the network as down.
"""

import socket

_LOCAL = ("127.", "localhost", "::1")


def _refuse(host: object) -> None:
    if isinstance(host, str) and not host.startswith(_LOCAL):
        raise OSError(f"tests must not touch the network (tried {host!r})")


_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect


def _getaddrinfo(host, *args, **kwargs):
    _refuse(host)
    return _real_getaddrinfo(host, *args, **kwargs)


def _connect(self, address):
    _refuse(address[0] if isinstance(address, tuple) else None)
    return _real_connect(self, address)


socket.getaddrinfo = _getaddrinfo
socket.socket.connect = _connect
