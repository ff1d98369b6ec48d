"""TensorFlow's start-up lines: held back while it is imported, then written to
stderr without those that ``TF_CPP_MIN_LOG_LEVEL`` would have dropped, and
written in full when the import dies.

TensorFlow 2.21's C++ side logs a few lines while it loads, before absl's
logging is set up and so whatever ``TF_CPP_MIN_LOG_LEVEL`` says (``All log
messages before absl::InitializeLog() ...`` and, where oneDNN's optimizations
are on, ``port.cc ... oneDNN custom operations are on`` twice).  They come from
C++ straight to file descriptor 2, before any filter of TensorFlow's exists, so
this is written by hand: while TensorFlow is imported, descriptor 2 is a pipe
to a small relay process (this file run as a script, standard library only)
that holds what it reads.  When the import ends, the process writes an
end-of-import mark into the pipe and the relay writes the lines out, filtered;
when the process dies during the import (a CPU without the instructions
TensorFlow needs, a fatal log line, the OOM killer), the pipe closes without
the mark and the relay writes everything it got, so TensorFlow's last lines are
never lost.

:func:`install` puts a finder on ``sys.meta_path`` that does this for the first
``import tensorflow`` of the process, whoever asks for it (``pipelines``,
Keras, KerasTuner, a user's ``kerasdnn.build_model(...).fit(...)``): ``pipelines``
installs it when it is imported, and ``kerasdnn`` and ``tuning`` import
``pipelines`` first.

This module imports only the standard library: it is cheap to import and to run.

Example:
    >>> below_log_level(b"I0000 00:00:17.6 6812 port.cc:153] oneDNN custom ...", 2)
    True
    >>> below_log_level(b"E0000 00:00:17.6 6812 x.cc:1] a real error", 2)
    False
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType

__all__ = ["below_log_level", "held_back", "install", "log_level"]

# glog's prefix, "I0000 00:00:1795972319.646892    6812 port.cc:153] ": severity I/W/E/F
# (before absl is set up, the time is seconds since the epoch, not HH:MM:SS).
_GLOG_LINE = re.compile(rb"^([IWEF])\d{4} \d+:\d+:\d+\.\d+ +\d+ [^ \]]+:\d+\] ")
_ABSL_PREAMBLE = b"WARNING: All log messages before absl::InitializeLog() is called"
_SEVERITY = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}
# Written by the importing process when the import is over (never by TensorFlow).
_DONE = b"\0kerasdnn: import finished\0"


def log_level() -> int:
    """``TF_CPP_MIN_LOG_LEVEL`` as a number (0 when unset or not a number)."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def below_log_level(line: bytes, level: int) -> bool:
    """A C++ log line that ``TF_CPP_MIN_LOG_LEVEL`` would have dropped after start-up."""
    if level > 0 and line.startswith(_ABSL_PREAMBLE):
        return True
    match = _GLOG_LINE.match(line)
    return match is not None and _SEVERITY[match.group(1)] < level


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _relay(read_fd: int, write_fd: int, level: int) -> None:
    """Read ``read_fd`` to its end; write it to ``write_fd`` filtered when it ends with
    the end-of-import mark, in full when it does not (the importing process died)."""
    data = b""
    # Until the mark (not EOF: a child process the import started may hold the pipe).
    while not data.endswith(_DONE) and (chunk := os.read(read_fd, 1 << 16)):
        data += chunk
    if data.endswith(_DONE):
        lines = data[: -len(_DONE)].splitlines(keepends=True)
        data = b"".join(line for line in lines if not below_log_level(line, level))
    _write_all(write_fd, data)


def _start_relay(level: int) -> subprocess.Popen[bytes] | None:
    """The relay process, its stdin a pipe, its stderr this process's (None: cannot)."""
    if not sys.executable:
        return None
    try:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), str(level)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, close_fds=True,
        )
    except OSError:
        return None


@contextlib.contextmanager
def held_back() -> Iterator[None]:
    """Hold back what is written to file descriptor 2 meanwhile (through the relay
    process of the module's text), then write it out without the lines below
    ``TF_CPP_MIN_LOG_LEVEL``; if the block raises, or the process dies meanwhile, the
    relay writes all of it.  Without a descriptor 2 or a way to start the relay it does nothing.

    Example:
        >>> with held_back():
        ...     pass
    """
    with contextlib.ExitStack() as stack:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            saved = None
        relay = _start_relay(log_level()) if saved is not None else None
        if relay is None or relay.stdin is None:
            if saved is not None:
                os.close(saved)
            yield
            return
        stack.callback(os.close, saved)
        os.dup2(relay.stdin.fileno(), 2)
        finished = False
        try:
            yield
            finished = True
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            if finished:  # else (an exception) the relay writes everything, as on a death
                with contextlib.suppress(OSError):
                    _write_all(2, _DONE)
            os.dup2(saved, 2)
            relay.stdin.close()
            relay.wait()


class _QuietLoader(importlib.abc.Loader):
    """The real loader of ``tensorflow``, its ``exec_module`` under :func:`held_back`."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader  # the real one, for anyone who looks
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        with held_back():
            self.loader.exec_module(module)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as the other finders do, with :class:`_QuietLoader`; once."""

    def find_spec(self, name: str, path: object = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)  # once, and no recursion in find_spec below
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Make the first ``import tensorflow`` of this process, from anywhere, quiet as the
    module's text says (nothing to do when TensorFlow is imported already).

    Example:
        >>> install()
    """
    if "tensorflow" in sys.modules:
        return
    if not any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


if __name__ == "__main__":  # the relay process
    _relay(0, 2, int(sys.argv[1]))
