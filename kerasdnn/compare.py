"""One configuration on every backend, side by side: ``python -m kerasdnn.compare``.

Takes every flag of ``python -m kerasdnn.train`` plus ``--backends`` and
``--check``.  Each backend trains in its own subprocess with ``KERAS_BACKEND``
set, into a normal run directory ``<out>/<backend>/``; a backend that is not
installed or fails gets a row saying why, and the others still run.  Then
``<out>/compare.json``, ``compare.md`` and ``compare.png`` show the numbers, the
largest differences between backends and the curves.  The module itself is
callable: ``kerasdnn.compare(dataset="digits", epochs=3, out="cmp")`` runs
:func:`compare` (three trainings) and returns its summary.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kerasdnn.cli import ArgumentParser, make_module_callable, non_negative_float
from kerasdnn.config import ModelConfig, TrainConfig
from kerasdnn.errors import EXIT_USER_ERROR, ConfigError, RunDirectoryError, exit_on_user_error
from kerasdnn.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from kerasdnn.run import merge_configs
from kerasdnn.rundir import default_run_dir
from kerasdnn.train import build_parser as train_parser
from kerasdnn.train import configs_from_args
from pipelines.backends import BACKENDS, backend_spec

__all__ = ["build_parser", "compare", "main"]

PROG = "python -m kerasdnn.compare"  # in --help and in every error line
SETTINGS_FILE = "settings.json"
COMPARE_JSON, COMPARE_MD, COMPARE_PNG = "compare.json", "compare.md", "compare.png"
EXIT_CHECK_FAILED = 1
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
    backends = _checked_backends(backends)
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
    atomic_write_json(out / SETTINGS_FILE, settings)

    outcomes: dict[str, dict[str, Any]] = {}
    for number, backend in enumerate(backends, start=1):
        if not quiet:
            print(f"[{number}/{len(backends)}] {backend}: training into {out / backend}",
                  flush=True)
        outcomes[backend] = _run_backend(backend, out, quiet=quiet)
        if not quiet:
            print(f"[{number}/{len(backends)}] {backend}: {_describe(outcomes[backend])}",
                  flush=True)
    return _write_summary(out, settings, outcomes, check)


def _checked_backends(backends: Sequence[str]) -> list[str]:
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
    if not _installed(backend):
        return {"status": "not installed", "reason": f"{backend_spec(backend).module} is not "
                f"installed (pip install 'kerasdnn[{backend}]')"}
    command = [sys.executable, "-m", "kerasdnn.train", "--config", str(out / SETTINGS_FILE),
               "--out", str(out / backend), *(["--quiet"] if quiet else [])]
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
        atomic_write_text(out / f"{backend}.stderr.txt", "".join(stderr))
        outcome["reason"] = _failure_reason(returncode, list(stderr))
    return outcome


def _installed(backend: str) -> bool:
    return importlib.util.find_spec(backend_spec(backend).module) is not None


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
    errors = [line for line in lines if line.startswith("kerasdnn.train: error:")]
    if errors:
        return errors[-1].removeprefix("kerasdnn.train: error:").strip()
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
    from kerasdnn.reports import comparison, png_bytes

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


# --------------------------------------------------------------------------- CLI


def build_parser() -> ArgumentParser:
    """``python -m kerasdnn.train``'s parser plus ``--backends`` and ``--check``.

    Example:
        >>> args = build_parser().parse_args(["--backends", "jax,torch", "--epochs", "2"])
        >>> args.backends, args.epochs
        (['jax', 'torch'], 2)
    """
    parser = train_parser()
    parser.prog = PROG
    parser.description = (
        "Train one configuration on each Keras backend (a subprocess each, a run\n"
        "directory each in <out>/<backend>/) and write compare.json, compare.md and\n"
        "compare.png: accuracy, F1, ROC AUC, losses, seconds per epoch, wall time,\n"
        "peak memory, and the largest differences between backends."
    )
    parser.epilog = (
        "examples:\n"
        "  python -m kerasdnn.compare --dataset digits --epochs 3 --out cmp\n"
        "  python -m kerasdnn.compare --backends jax,torch --check 1e-4 --out cmp\n"
        "exit status: 0 done; 1 --check failed; 2 bad input or no backend finished"
    )
    group = parser.add_argument_group("comparison")
    group.add_argument("--backends", type=_backend_list, metavar="NAMES",
                       help=f"comma-separated backends (default: {','.join(BACKENDS)})")
    group.add_argument("--check", type=non_negative_float, metavar="TOL",
                       help="exit 1 when a backend does not finish or two backends' test "
                       "probabilities differ by more than TOL (default: off)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m kerasdnn.compare``; returns the exit status."""
    args = build_parser().parse_args(argv)
    given = vars(args)
    quiet = given.get("quiet", False)
    with exit_on_user_error(PROG):
        if given.get("resume"):
            raise ConfigError("--resume is not supported: a comparison starts new runs")
        train_values, model_values = configs_from_args(args)
        summary = compare(train_values, model_values, backends=given.get("backends", BACKENDS),
                          check=given.get("check"), quiet=quiet)
    rows = summary["backends"].values()
    if not any(row["status"] == "finished" for row in rows):
        reasons = "; ".join(f"{name}: {row['reason']}" for name, row in summary["backends"].items())
        print(f"{PROG}: error: no backend finished ({reasons})", file=sys.stderr)
        return EXIT_USER_ERROR
    if not quiet:
        print((Path(summary["out_dir"]) / COMPARE_MD).read_text(encoding="utf-8"))
    print(f"wrote {summary['out_dir']}")
    check = summary["check"]
    if check and not check["passed"]:
        from kerasdnn.reports.comparison import check_failure

        print(f"{PROG}: check failed: {check_failure(check)}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    return 0


def _backend_list(text: str) -> list[str]:
    try:
        return _checked_backends([part.strip() for part in text.split(",") if part.strip()])
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


if __name__ == "__main__":
    sys.exit(main())
else:
    make_module_callable(__name__, compare)
