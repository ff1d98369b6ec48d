"""The chief of a distributed search: KerasTuner's oracle served over gRPC; and
KerasTuner's state files written atomically.

The only module that uses KerasTuner's private ``keras_tuner.src`` modules (its
gRPC protos and ``OracleServicer``, which have no public name, and the
``save_json`` every ``trial.json``/``oracle.json`` goes through): they may move
in any release, so setup.cfg caps keras-tuner at the minor version tested (1.4.8).

Example:
    >>> serve(tuner, options, print)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kerasdnn.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from tuning.search import SearchOptions

__all__ = ["serve", "write_tuner_state_atomically"]


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
    import json

    from keras_tuner.src import utils

    from kerasdnn.io import atomic_write_text

    def atomic_save_json(path: str, obj: Any) -> str:
        text = json.dumps(obj)
        atomic_write_text(path, text)
        return text

    utils.save_json = atomic_save_json


def serve(tuner: Any, options: SearchOptions, on_trial_done: Callable[[Any], None]) -> None:
    """The chief: serve the oracle to the workers until every trial has ended.

    Like ``keras_tuner``'s own ``oracle_chief.start_server`` (same servicer),
    but it reports each trial as it ends and returns within a second of the
    last one (KerasTuner's loop polls every 20 seconds).
    """
    from concurrent import futures

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
