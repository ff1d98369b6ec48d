"""KerasTuner's distributed mode: the ``KERASTUNER_*`` environment of a chief or a
worker, the chief's oracle served over gRPC; and KerasTuner's state files written
atomically.

The only module that uses KerasTuner's private ``keras_tuner.src`` modules (its
gRPC protos and ``OracleServicer``, which have no public name, and the
``save_json`` every ``trial.json``/``oracle.json`` goes through): they may move
in any release, so setup.cfg caps keras-tuner at the minor version tested (1.4.8).

Example:
    >>> from tuning.options import SearchOptions
    >>> options = SearchOptions(chief=("127.0.0.1", 8000), worker="tuner1")
    >>> set_distributed_environment(options)
    >>> [os.environ.pop(f"KERASTUNER_{name}") for name in ("TUNER_ID", "ORACLE_IP", "ORACLE_PORT")]
    ['tuner1', '127.0.0.1', '8000']
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import TYPE_CHECKING, Any

from kerasdnn.core.errors import ConfigError
from kerasdnn.core.io import atomic_write_text

if TYPE_CHECKING:  # pragma: no cover
    from tuning.options import SearchOptions

__all__ = ["CHIEF_TIMEOUT", "guard_worker", "serve", "set_distributed_environment",
           "write_tuner_state_atomically"]

CHIEF_TIMEOUT = 60  # seconds a worker waits for a chief that does not answer (--chief-timeout)
WATCH_SECONDS = 2.0  # how often a worker checks that its chief is there
# gRPC codes of a failure that may pass (a restarting listener, a full queue, a dropped
# connection): retried until the chief has been silent for the timeout.
TRANSIENT = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL")


def set_distributed_environment(options: SearchOptions) -> None:
    """Set KerasTuner's ``KERASTUNER_*`` variables for ``--chief`` / ``--worker``;
    without ``--chief``, take the role those variables give when set by hand."""
    if options.chief is None:
        _role_from_environment(options)
        return
    host, port = options.chief
    os.environ["KERASTUNER_TUNER_ID"] = options.worker or "chief"
    os.environ["KERASTUNER_ORACLE_IP"] = host
    os.environ["KERASTUNER_ORACLE_PORT"] = str(port)


def _role_from_environment(options: SearchOptions) -> None:
    """KerasTuner's variables set by hand (no --chief): take the role they give."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return
    try:
        options.chief = (os.environ["KERASTUNER_ORACLE_IP"],
                         int(os.environ["KERASTUNER_ORACLE_PORT"]))
        tuner_id = os.environ["KERASTUNER_TUNER_ID"]
    except (KeyError, ValueError):
        raise ConfigError(
            "KERASTUNER_ORACLE_IP is set but KERASTUNER_ORACLE_PORT or KERASTUNER_TUNER_ID is "
            "missing or wrong; use --chief HOST:PORT [--worker ID] instead"
        ) from None
    options.worker = None if "chief" in tuner_id else tuner_id


def write_tuner_state_atomically() -> None:
    """Make KerasTuner write its ``trial.json`` and ``oracle.json`` files atomically.

    KerasTuner 1.4 overwrites them in place (``keras_tuner.src.utils.save_json``), so
    a search killed mid-write leaves a torn file that its reload cannot read; a
    temporary file renamed into place leaves the old one or the new one.  Idempotent.

    Example:
        >>> write_tuner_state_atomically()
        >>> from keras_tuner.src import utils
        >>> utils.save_json.__name__
        'atomic_save_json'
    """
    from keras_tuner.src import utils

    def atomic_save_json(path: str, obj: Any) -> str:
        text = json.dumps(obj)
        atomic_write_text(path, text)
        return text

    utils.save_json = atomic_save_json


@contextlib.contextmanager
def guard_worker(tuner: Any, options: SearchOptions) -> Iterator[None]:
    """A worker's link to its chief, made robust around KerasTuner's ``OracleClient``
    (which waits up to an hour for a chief that is gone, keras-tuner PR 645, and
    fails on the first gRPC error, #915):

    - a watchdog checks every :data:`WATCH_SECONDS` that the chief's channel is up
      (``grpc.channel_ready_future``); when it has not been for ``options.chief_timeout``
      seconds, the worker prints one line and exits with status 2, also mid-trial;
    - each call that fails with a transient gRPC error (:data:`TRANSIENT`) is retried
      with a growing pause until the chief has been silent that long.

    No call has a shorter deadline than KerasTuner's (an hour): a trial never runs inside
    a call, so a long trial is never cut.
    """
    import grpc
    from keras_tuner.src import protos

    host, port = options.chief
    address = f"{host}:{port}"
    seconds = float(options.chief_timeout or CHIEF_TIMEOUT)
    channel = grpc.insecure_channel(address)
    client = tuner.oracle
    client.stub = _RetryingStub(protos.get_service_grpc().OracleStub(channel), seconds,
                                lambda: _chief_gone(options.worker, address, seconds))
    done = threading.Event()

    def watch() -> None:
        while not done.wait(WATCH_SECONDS):
            try:
                grpc.channel_ready_future(channel).result(timeout=seconds)
            except grpc.FutureTimeoutError:
                if not done.is_set():
                    _chief_gone(options.worker, address, seconds)

    watchdog = threading.Thread(target=watch, name="chief-watchdog", daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        done.set()
        channel.close()


class _RetryingStub:
    """KerasTuner's ``OracleStub`` whose calls retry transient gRPC errors."""

    def __init__(self, stub: Any, seconds: float, give_up: Callable[[], None]) -> None:
        self._stub, self._seconds, self._give_up = stub, seconds, give_up

    def __getattr__(self, name: str) -> Callable[..., Any]:
        import grpc

        method = getattr(self._stub, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            deadline = time.monotonic() + self._seconds
            pause = 0.5
            while True:
                try:
                    return method(*args, **kwargs)
                except grpc.RpcError as error:
                    if error.code().name not in TRANSIENT:
                        raise
                    if time.monotonic() + pause > deadline:
                        self._give_up()
                        raise
                    time.sleep(pause)
                    pause = min(pause * 2, 5.0)

        return call


def _chief_gone(worker: str | None, address: str, seconds: float) -> None:
    """One line, exit status 2, now (from any thread: the training may be running)."""
    print(f"python -m tuning.search: error: worker {worker}: the chief at {address} has not "
          f"answered for {seconds:g} s; restart the chief with the same command, then the "
          "workers: the search continues where it stopped", file=sys.stderr, flush=True)
    os._exit(2)


def serve(tuner: Any, options: SearchOptions, on_trial_done: Callable[[Any], None]) -> None:
    """The chief: serve the oracle to the workers until every trial has ended.

    Like ``keras_tuner``'s own ``oracle_chief.start_server`` (same servicer),
    but it reports each trial as it ends and returns within a second of the
    last one (KerasTuner's loop polls every 20 seconds).
    """
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    oracle = tuner.oracle
    host, port = options.chief
    tuner.save()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise ConfigError(f"--chief {host}:{port}: cannot listen there (address in use?); "
                          "choose another port")
    server.start()
    print(f"chief: serving the search on {host}:{port}; start workers with "
          f"--chief <this host>:{port} --worker tuner1, tuner2, …", flush=True)
    reported = set(oracle.end_order)
    try:
        while True:
            time.sleep(0.5)
            for trial_id in list(oracle.end_order):
                if trial_id not in reported:
                    reported.add(trial_id)
                    on_trial_done(oracle.trials[trial_id])
            if servicer.stop_triggered and oracle_chief.exit_chief(oracle):
                break
    finally:
        server.stop(grace=2)
