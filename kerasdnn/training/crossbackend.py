"""One configuration on every backend, side by side: :func:`compare`, what
``python -m kerasdnn.compare`` and ``kerasdnn.compare(...)`` run.

Each backend trains in its own subprocess with ``KERAS_BACKEND``
set, into a normal run directory ``<out>/<backend>/``; a backend that is not
installed or fails gets a row saying why, and the others still run.  Then
``<out>/compare.json``, ``compare.md`` and ``compare.png`` show the numbers, the
largest differences between backends and the curves.
``compare(dataset="digits", epochs=3, out="cmp")`` runs three trainings and
returns the summary.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kerasdnn.core.config import ModelConfig, TrainConfig
from kerasdnn.core.errors import ConfigError, RunDirectoryError
from kerasdnn.core.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from kerasdnn.core.rundir import (
    COMPARE_JSON,
    COMPARE_MD,
    COMPARE_PNG,
    COMPARE_SETTINGS_FILE,
    backend_run_dir,
    backend_stderr_file,
    default_run_dir,
)
from kerasdnn.training.run import merge_configs
from pipelines.backends import BACKENDS, backend_spec, installed

__all__ = ["checked_backends", "compare"]

TRAIN_COMMAND = "kerasdnn.train"  # what each backend's subprocess runs
_STDERR_LINES_KEPT = 200


def compare(
    config: TrainConfig | Mapping[str, Any] | None = None,
    model_config: ModelConfig | Mapping[str, Any] | None = None,
    *,
    backends: Sequence[str] = BACKENDS,
    check: float | None = None,
    quiet: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Train the same configuration on each backend and compare the runs.

    Args:
        config, model_config, **overrides: the settings, as for
            :func:`kerasdnn.train.train` (``out`` is the comparison folder; it
            must be new or empty; default ``runs/<dataset>-compare-<timestamp>``).
        backends: the Keras backends to run, in order.
        check: a tolerance for the test probabilities; the summary's ``check``
            says whether every pair of backends stays within it.
        quiet: no progress lines and no Keras progress bars.

    Returns:
        The summary written to ``compare.json``: ``settings``, ``backends``
        (one row each: status, reason, accuracy, f1_macro, roc_auc_macro,
        final_loss, final_val_loss, median_epoch_seconds, wall_seconds,
        peak_rss_mib), ``differences`` (``train_loss``, ``test_probabilities``:
        largest absolute difference, overall and per pair), ``check``, ``out_dir``.
        E.g. ``compare(dataset="digits", epochs=2, backends=("jax", "torch"),
        check=1e-4)["check"]["passed"]`` says whether JAX and PyTorch agree.
    """
    backends = checked_backends(backends)
    if check is not None and not check >= 0:
        raise ConfigError(f"check must be a tolerance >= 0, got {check!r}")
    train_config, model_config = merge_configs(config, model_config, overrides)
    out = Path(train_config.out) if train_config.out else default_run_dir(
        train_config.dataset, "compare")
    _check_new_folder(out)
    settings = {
        "train": {**train_config.to_dict(), "out": None},
        "model": {k: v for k, v in model_config.to_dict().items()
                  if k not in ("input_shape", "num_classes")},
    }
    atomic_write_json(out / COMPARE_SETTINGS_FILE, settings)

    outcomes: dict[str, dict[str, Any]] = {}
    for number, backend in enumerate(backends, start=1):
        if not quiet:
            print(f"[{number}/{len(backends)}] {backend}: training into "
                  f"{backend_run_dir(out, backend)}",
                  flush=True)
        outcomes[backend] = _run_backend(backend, out, quiet=quiet)
        if not quiet:
            print(f"[{number}/{len(backends)}] {backend}: {_describe(outcomes[backend])}",
                  flush=True)
    return _write_summary(out, settings, outcomes, check)


def checked_backends(backends: Sequence[str]) -> list[str]:
    """``backends`` as a list, refused unless distinct known backends.

    Example:
        >>> checked_backends("jax")
        ['jax']
    """
    chosen = [backends] if isinstance(backends, str) else list(backends)
    unknown = [name for name in chosen if name not in BACKENDS]
    if unknown or not chosen:
        raise ConfigError(
            f"backends must be some of {', '.join(BACKENDS)}, got {', '.join(chosen) or 'none'}"
        )
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"backends must be distinct, got {', '.join(chosen)}")
    return chosen


def _check_new_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise RunDirectoryError(f"--out {out} is a file; give a directory for the comparison")
    if out.is_dir() and any(out.iterdir()):
        raise RunDirectoryError(f"--out {out} is not empty; choose a new folder")


def _run_backend(backend: str, out: Path, *, quiet: bool) -> dict[str, Any]:
    """Train in a subprocess; its outcome: status, reason, wall time, peak memory."""
    if not installed(backend):
        return {"status": "not installed", "reason": f"{backend_spec(backend).module} is not "
                f"installed (pip install 'kerasdnn[{backend}]')"}
    command = [sys.executable, "-m", TRAIN_COMMAND, "--config",
               str(out / COMPARE_SETTINGS_FILE), "--out", str(backend_run_dir(out, backend)),
               *(["--quiet"] if quiet else [])]
    start = time.monotonic()
    process = subprocess.Popen(
        command, env={**os.environ, "KERAS_BACKEND": backend},
        stdout=subprocess.DEVNULL if quiet else None, stderr=subprocess.PIPE, text=True,
    )
    stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES_KEPT)
    reader = threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True)
    reader.start()
    returncode, peak_rss_mib = _wait_with_usage(process)
    reader.join()
    outcome: dict[str, Any] = {
        "status": "finished" if returncode == 0 else "failed",
        "reason": None,
        "returncode": returncode,
        "wall_seconds": time.monotonic() - start,
        "peak_rss_mib": peak_rss_mib,
    }
    if returncode != 0:
        atomic_write_text(backend_stderr_file(out, backend), "".join(stderr))
        outcome["reason"] = _failure_reason(returncode, list(stderr))
    return outcome


def _wait_with_usage(process: subprocess.Popen) -> tuple[int, float | None]:
    """Exit status and peak resident memory (MiB) of this one child (``os.wait4``;
    ``getrusage(RUSAGE_CHILDREN)`` keeps only the largest child so far)."""
    if not hasattr(os, "wait4"):  # Windows: no per-child resource usage
        return process.wait(), None
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return process.returncode, usage.ru_maxrss / scale


def _failure_reason(returncode: int, stderr: list[str]) -> str:
    lines = [line.strip() for line in stderr if line.strip()]
    prefix = f"{TRAIN_COMMAND}: error:"
    errors = [line for line in lines if line.startswith(prefix)]
    if errors:
        return errors[-1].removeprefix(prefix).strip()
    if returncode < 0:
        return f"killed by signal {-returncode}"
    return (lines[-1] if lines else "no message") + f" (exit status {returncode})"


def _describe(outcome: Mapping[str, Any]) -> str:
    if outcome["status"] == "finished":
        return f"finished in {outcome['wall_seconds']:.1f} s"
    return f"{outcome['status']}: {outcome['reason']}"


def _write_summary(
    out: Path, settings: dict[str, Any], outcomes: dict[str, dict[str, Any]],
    check: float | None,
) -> dict[str, Any]:
    from kerasdnn.evaluation.reports import comparison, png_bytes

    summary = {"out_dir": str(out), "settings": settings,
               **comparison.summarize(out, outcomes), "check": None}
    if check is not None:
        largest = summary["differences"]["test_probabilities"]["max"]
        # A requested backend that did not finish fails the check: CI must not go
        # green with a broken (or missing) backend.
        unfinished = {name: f"{row['status']}: {row.get('reason')}"
                      for name, row in summary["backends"].items()
                      if row["status"] != comparison.FINISHED}
        summary["check"] = {
            "tolerance": check,
            "max_probability_difference": largest,
            "unfinished": unfinished,
            "passed": not unfinished and largest is not None and largest <= check,
        }
    title = f"{settings['train']['dataset']} on {', '.join(outcomes)}"
    figure = png_bytes(comparison.comparison_figure(out, summary))
    atomic_write_bytes(out / COMPARE_PNG, figure)
    atomic_write_text(out / COMPARE_MD, comparison.comparison_markdown(summary, title=title))
    atomic_write_json(out / COMPARE_JSON, summary)
    return summary
