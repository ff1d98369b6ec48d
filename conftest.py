"""Set-up for every test and docstring example: no network; what doctest collection
(``--doctest-modules``, see pyproject.toml) leaves out.

Every public docstring example runs in tox, on each backend env.  Left out: a
``__main__`` module (importing it runs the command) and the step files of the
backends that are not active (importing one needs its framework).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest

from pipelines.backends import BACKENDS, configured_backend, step_files

_ACTIVE = configured_backend()

collect_ignore_glob = ["*/__main__.py", "examples/*", "build/*"]
collect_ignore_glob += [step_files(name) for name in BACKENDS if name != _ACTIVE]

# Docstring examples that need a framework the env may lack (tox's backend envs
# install only their own): skipped there, run where it is installed.
_EXAMPLES_NEED = {"pipelines.device.TorchPrefetchLoader": "torch",
                  "pipelines.resident.resident_batches": "jax"}
# Docstring examples of one backend's code, outside a step file: run on that backend only.
_EXAMPLES_ON_BACKEND = {"benchmarks.step_profile.step_gradients": "torch"}


# Tests marked backend_free test code that no Keras backend runs (the tf.data pipeline,
# the tables, the reports, the configs): every backend env would repeat them to the bit,
# and tox runs the envs one after another, so one env runs them.
_BACKEND_FREE_ENV = "tensorflow"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        needed = _EXAMPLES_NEED.get(item.name)
        if needed is not None and importlib.util.find_spec(needed) is None:
            item.add_marker(pytest.mark.skip(reason=f"the example needs {needed}"))
        only_on = _EXAMPLES_ON_BACKEND.get(item.name)
        if only_on is not None and only_on != _ACTIVE:
            item.add_marker(pytest.mark.skip(reason=f"the example runs on {only_on}"))
    if _ACTIVE != _BACKEND_FREE_ENV:
        elsewhere = [item for item in items if item.get_closest_marker("backend_free")]
        if elsewhere:
            config.hook.pytest_deselected(items=elsewhere)
            items[:] = [item for item in items if not item.get_closest_marker("backend_free")]


@pytest.fixture(autouse=True)
def _environment_put_back() -> Iterator[None]:
    """Each test and docstring example leaves ``os.environ`` as it found it.

    Some set variables on purpose (a docstring example sets ``KERAS_BACKEND``; the
    tuning chief sets KerasTuner's ``KERASTUNER_*``), and under pytest-xdist a file
    runs after whatever files its worker ran before: a leaked ``KERAS_BACKEND=jax``
    would reach the subprocesses of a later test on another backend.
    """
    saved = dict(os.environ)
    yield
    for name in set(os.environ) - set(saved):
        del os.environ[name]
    os.environ.update({name: value for name, value in saved.items()
                       if os.environ.get(name) != value})


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail fast if a test tries to open a socket to anything but this machine."""
    import socket

    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (
            host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")
        ):
            raise OSError(f"tests must not touch the network (tried {address!r})")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
