"""The same random search with and without pruning, on every backend (issue 25).

Writes MNIST-shaped data once (:func:`make_digits_mnist`: scikit-learn's bundled
8x8 digits, upscaled into 28x28 uint8 images with random shifts, contrast and
noise; the test images come from other digits than the training images) to an
``npz:`` file, then, for each backend and each ``--prune`` setting, runs in a
subprocess with ``KERAS_BACKEND`` set::

    python -m tuning.search --tuner random --max-trials N --epochs E \\
        --dataset npz:PATH --seed S --prune P --directory DIR --overwrite

(the default search space, a fresh project each), reads the project's
``trials.csv`` and the command's last lines, and prints one Markdown table per
backend: trials completed / pruned / failed, epochs trained, the best objective
and its trial, the test accuracy of the retrained ``best/``, the trials' own
seconds and the whole command's wall time.  Under each table: the epochs the
pruned trials stopped at, whether the searches drew the same hyperparameters
trial by trial (same seed: they should), the difference of their best
objectives, which of the unpruned search's five best trials pruning stopped, and
the load average around each search (the wall times are only as steady as the
machine; the epochs and objectives do not depend on it).

Epochs trained: a completed or failed trial trains ``--epochs`` (divergence is
checked after ``fit``), a pruned one the epochs it reached (``pruned_at_epoch``).

This process imports no backend and no kerasdnn module: each search is the
command line, as a user runs it.  Each backend needs an interpreter with it
installed: this one (``sys.executable``) unless ``--python BACKEND=PATH`` names
another (e.g. one tox environment per backend).

Example (``--threads 1`` on a machine other work loads: with the libraries' default
threads on 2 busy cores, PyTorch's searches ran about ten times slower; BENCHMARKS.md):
    python -m benchmarks.search_pruning --backends jax,tensorflow,torch --epochs 5 \\
        --max-trials 20 --threads 1 --json search.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import (
    BACKENDS,
    command_line,
    interpreters,
    limit_threads,
    machine_info,
    machine_line,
    markdown_table,
    parse_backends,
    run_python,
)

IMAGE_SIDE = 28
DIGIT_SIDE = 20  # MNIST's digits fill a 20x20 box centred in the 28x28 image
NUM_CLASSES = 10
MAX_SHIFT = 3  # pixels, each way, of the digit's box in the image
NOISE = 12.0  # standard deviation of the added noise, in 0..255 grey levels
PRUNE_CHOICES = ("none", "median", "asha")
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# trials.csv's own columns (tuning.results): every other column is a hyperparameter
RESULT_COLUMNS = ("trial_id", "status", "worker", "score", "seconds", "steps_per_epoch",
                  "best_epoch", "pruned_at_epoch", "pruned_value", "error")
TEST_ACCURACY = re.compile(r"best model: test accuracy ([0-9.]+)")


# --------------------------------------------------------------------------- the data


def make_digits_mnist(train: int, test: int, seed: int = 1) -> dict[str, Any]:
    """MNIST-shaped data that can be learned: ``(n, 28, 28)`` uint8 images, int64
    labels in [0, 10), the keys of an ``npz:`` dataset.

    Each image is one of scikit-learn's 1,797 bundled 8x8 digits, upscaled to
    20x20 (bilinear), placed at a random shift of up to :data:`MAX_SHIFT` pixels
    from the centre, with a random contrast (0.7 .. 1.0 of full scale) and
    Gaussian noise.  The training images come from a stratified 80 % of the
    digits, the test images from the other 20 %: the test accuracy is on
    handwriting the model never saw.

    Example:
        >>> data = make_digits_mnist(30, 10)
        >>> data["x_train"].shape, data["x_train"].dtype.name, data["y_test"].shape
        ((30, 28, 28), 'uint8', (10,))
    """
    import numpy as np
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    labels = digits.target.astype(np.int64)
    split = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=labels,
                             random_state=seed)
    big = np.stack([zoom(image, DIGIT_SIDE / image.shape[0], order=1) for image in images])
    big = np.clip(big, 0.0, 1.0)
    rng = np.random.default_rng(seed)
    data = {}
    for part, count, pool in (("train", train, split[0]), ("test", test, split[1])):
        chosen = rng.choice(pool, size=count, replace=True)
        canvas = np.zeros((count, IMAGE_SIDE, IMAGE_SIDE), np.float32)
        corner = (IMAGE_SIDE - DIGIT_SIDE) // 2
        shifts = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, size=(count, 2)) + corner
        contrast = rng.uniform(0.7, 1.0, size=count).astype(np.float32)
        for i, (source, (row, column)) in enumerate(zip(chosen, shifts, strict=True)):
            canvas[i, row:row + DIGIT_SIDE, column:column + DIGIT_SIDE] = \
                big[source] * contrast[i]
        grey = canvas * 255.0 + rng.normal(0.0, NOISE, size=canvas.shape)
        data[f"x_{part}"] = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        data[f"y_{part}"] = labels[chosen]
    return data


def write_data(path: str | Path, train: int, test: int, seed: int = 1) -> Path:
    """:func:`make_digits_mnist` saved as an ``npz:`` dataset (``np.savez``) at ``path``."""
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = make_digits_mnist(train, test, seed)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as handle:
        np.savez(handle, **{key: data[key] for key in NPZ_KEYS})
    os.replace(handle.name, path)
    return path


# --------------------------------------------------------------------------- one search


def search_command(*, prune: str, data: str | Path, directory: str | Path, project: str,
                   max_trials: int, epochs: int, seed: int,
                   extra: Sequence[str] = ()) -> list[str]:
    """The arguments of ``python`` for one search (a fresh project: ``--overwrite``).

    Example:
        >>> search_command(prune="median", data="d.npz", directory="runs", project="p",
        ...                max_trials=20, epochs=5, seed=3)[:8]
        ['-m', 'tuning.search', '--tuner', 'random', '--max-trials', '20', '--epochs', '5']
    """
    return ["-m", "tuning.search", "--tuner", "random", "--max-trials", str(max_trials),
            "--epochs", str(epochs), "--dataset", f"npz:{data}", "--seed", str(seed),
            "--prune", prune, "--directory", str(directory), "--project-name", project,
            "--overwrite", *extra]


def summarize_search(rows: Sequence[Mapping[str, str]], epochs: int,
                     direction: str = "max") -> dict[str, Any]:
    """What a ``trials.csv`` says: trials by status, epochs trained, the best trial.

    Example:
        >>> rows = [{"trial_id": "00", "status": "COMPLETED", "score": "0.9", "seconds": "4"},
        ...         {"trial_id": "01", "status": "PRUNED", "pruned_at_epoch": "2",
        ...          "seconds": "1.5"},
        ...         {"trial_id": "02", "status": "COMPLETED", "score": "0.95", "seconds": "4"}]
        >>> s = summarize_search(rows, epochs=5)
        >>> s["completed"], s["pruned"], s["epochs_trained"], s["best_trial"], s["best_score"]
        (2, 1, 12, '02', 0.95)
    """
    completed = [row for row in rows if row.get("status") == "COMPLETED"]
    pruned = [row for row in rows if row.get("status") == "PRUNED"]
    failed = [row for row in rows if row.get("status") not in ("COMPLETED", "PRUNED")]
    pruned_at = [int(row["pruned_at_epoch"]) if row.get("pruned_at_epoch") else epochs
                 for row in pruned]
    scored = [row for row in completed if row.get("score")]
    better = max if direction == "max" else min
    best = better(scored, key=lambda row: float(row["score"])) if scored else None
    return {
        "trials": len(rows),
        "completed": len(completed),
        "pruned": len(pruned),
        "failed": len(failed),
        "pruned_at": sorted(pruned_at),
        "epochs_trained": epochs * (len(completed) + len(failed)) + sum(pruned_at),
        "best_trial": best["trial_id"] if best else None,
        "best_score": float(best["score"]) if best else None,
        "trial_seconds": sum(float(row["seconds"]) for row in rows if row.get("seconds")),
        "scores": {row["trial_id"]: float(row["score"]) for row in scored},
        "pruned_trials": [row["trial_id"] for row in pruned],
    }


def hyperparameters(rows: Sequence[Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """Trial id -> the trial's hyperparameters, as ``trials.csv`` wrote them."""
    return {row["trial_id"]: {key: value for key, value in row.items()
                              if key not in RESULT_COLUMNS}
            for row in rows}


def run_search(python: str, backend: str, prune: str, args: argparse.Namespace,
               data: Path, directory: Path) -> dict[str, Any]:
    """Run one search; its summary (:func:`summarize_search`), the test accuracy of
    ``best/`` and the wall time, or the error that stopped it."""
    project = f"{backend}-prune-{prune}"
    command = search_command(prune=prune, data=data, directory=directory, project=project,
                             max_trials=args.max_trials, epochs=args.epochs, seed=args.seed,
                             extra=args.search_args)
    print(f"[{backend}] python {' '.join(command)}", flush=True)
    load_before = os.getloadavg()[0]
    done = run_python(command, backend=backend, timeout=args.timeout,
                      env={"MPLBACKEND": "Agg"}, python=python)
    result: dict[str, Any] = {"backend": backend, "prune": prune,
                              "command": "python " + " ".join(command),
                              "wall_seconds": done.seconds, "load_before": load_before,
                              "load_after": os.getloadavg()[0]}
    trials_csv = directory / project / "trials.csv"
    if trials_csv.exists():
        with trials_csv.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        result.update(summarize_search(rows, args.epochs))
        result["hyperparameters"] = hyperparameters(rows)
    found = TEST_ACCURACY.findall(done.stdout)
    result["test_accuracy"] = float(found[-1]) if found else None
    if done.failure:
        result["error"] = done.failure
        sys.stderr.write(done.stderr[-4000:])
    print(f"[{backend}] --prune {prune}: {_outcome(result)} in {done.seconds:.0f} s", flush=True)
    return result


# --------------------------------------------------------------------------- the tables


def same_trials(results: Sequence[Mapping[str, Any]]) -> bool | None:
    """Whether every search drew the same hyperparameters for each trial id they share
    (``None``: fewer than two searches to compare).

    Example:
        >>> same_trials([{"hyperparameters": {"00": {"units_0": "256"}}},
        ...              {"hyperparameters": {"00": {"units_0": "256"}, "01": {}}}])
        True
    """
    drawn = [result["hyperparameters"] for result in results if "hyperparameters" in result]
    if len(drawn) < 2:
        return None
    first = drawn[0]
    return all(other[trial] == first[trial] for other in drawn[1:]
               for trial in set(first) & set(other))


def format_table(results: Sequence[Mapping[str, Any]], objective: str = "val_accuracy") -> str:
    """One backend's searches as a Markdown table, the first search (no pruning) the
    reference of the epochs' change.

    Example:
        >>> table = format_table([{"prune": "none", "completed": 2, "pruned": 0, "failed": 0,
        ...     "epochs_trained": 10, "best_score": 0.9, "best_trial": "00",
        ...     "test_accuracy": 0.88, "trial_seconds": 20.0, "wall_seconds": 30.0}])
        >>> [cell.strip() for cell in table.splitlines()[-1].split("|")[1:-1]]
        ['none', '2 / 0 / 0', '10', '0.9000 (trial 00)', '0.8800', '20 s', '30 s']
    """
    header = ["`--prune`", "trials (completed / pruned / failed)", "epochs trained",
              f"best {objective} (trial)", "best/ test accuracy", "trials' seconds",
              "wall time"]
    reference = next((r["epochs_trained"] for r in results
                      if r.get("prune") == "none" and "epochs_trained" in r), None)
    rows = []
    for result in results:
        if "epochs_trained" not in result:
            rows.append([result["prune"], result.get("error", "no trials.csv"), "", "", "", "",
                         f"{result['wall_seconds']:.0f} s"])
            continue
        epochs = str(result["epochs_trained"])
        if reference and result["prune"] != "none":
            epochs += f" ({(result['epochs_trained'] - reference) / reference:+.0%})"
        best = "" if result["best_score"] is None else \
            f"{result['best_score']:.4f} (trial {result['best_trial']})"
        test = "" if result.get("test_accuracy") is None else f"{result['test_accuracy']:.4f}"
        if result.get("error"):
            test = f"{test} ({result['error']})".strip()
        rows.append([
            result["prune"],
            f"{result['completed']} / {result['pruned']} / {result['failed']}",
            epochs, best, test, f"{result['trial_seconds']:.0f} s",
            f"{result['wall_seconds']:.0f} s",
        ])
    return markdown_table(header, rows)


def notes(results: Sequence[Mapping[str, Any]], top: int = 5) -> list[str]:
    """The lines under a backend's table: where the pruned trials stopped, whether the
    searches drew the same trials, the best objectives' difference, which of the
    unpruned search's ``top`` trials pruning stopped, and the machine's load.

    Example:
        >>> none = {"prune": "none", "best_score": 0.9, "best_trial": "00",
        ...         "scores": {"00": 0.9, "01": 0.8, "02": 0.5}}
        >>> median = {"prune": "median", "best_score": 0.9, "best_trial": "00", "pruned": 1,
        ...           "pruned_at": [2], "pruned_trials": ["01"], "scores": {"00": 0.9}}
        >>> print("\\n".join(notes([none, median], top=2)))
        --prune median: pruned trials stopped at epochs 2
        --prune median: best objective +0.0000 against none (trial 00 vs 00)
        --prune median: pruned 1 of the unpruned search's top 2: 01 (0.8000, rank 2)
    """
    lines = []
    for result in results:
        if result.get("pruned"):
            lines.append(f"--prune {result['prune']}: pruned trials stopped at epochs "
                         f"{', '.join(map(str, result['pruned_at']))}")
    same = same_trials(results)
    if same is not None:
        lines.append("same hyperparameters per trial id in every search: "
                     + ("yes" if same else "NO"))
    reference = next((r for r in results if r.get("prune") == "none"
                      and r.get("best_score") is not None), None)
    for result in results:
        if reference is None or result is reference or result.get("best_score") is None:
            continue
        lines.append(f"--prune {result['prune']}: best objective "
                     f"{result['best_score'] - reference['best_score']:+.4f} against none "
                     f"(trial {result['best_trial']} vs {reference['best_trial']})")
        ranked = sorted(reference["scores"].items(), key=lambda item: -item[1])[:top]
        lost = [(rank, trial, score) for rank, (trial, score) in enumerate(ranked, start=1)
                if trial in result.get("pruned_trials", [])]
        if lost:
            lines.append(f"--prune {result['prune']}: pruned {len(lost)} of the unpruned "
                         f"search's top {top}: " + ", ".join(
                             f"{trial} ({score:.4f}, rank {rank})" for rank, trial, score in lost))
    loads = [f"{r['prune']} {r['load_before']:.1f} → {r['load_after']:.1f}"
             for r in results if "load_before" in r]
    if loads:
        lines.append("load average (1 min) before → after each search: " + "; ".join(loads))
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.search_pruning",
        description="The same random search with and without --prune, on MNIST-shaped "
                    "data, one subprocess per backend and search.",
    )
    parser.add_argument("--backends", default=",".join(BACKENDS), type=parse_backends,
                        help="comma-separated Keras backends (default: %(default)s)")
    parser.add_argument("--prunes", default="none,median",
                        type=lambda text: _choices(text, PRUNE_CHOICES),
                        help="--prune settings, each a search (default: %(default)s)")
    parser.add_argument("--max-trials", type=int, default=20, help="(default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=5,
                        help="epochs per trial (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=3,
                        help="the searches' --seed, and the data's (default: %(default)s)")
    parser.add_argument("--train-examples", type=int, default=12_000,
                        help="training images (the search holds out its validation split "
                             "from them; default: %(default)s)")
    parser.add_argument("--test-examples", type=int, default=2_000,
                        help="test images (default: %(default)s)")
    parser.add_argument("--data", metavar="PATH.npz",
                        help="use this npz dataset (written when missing) instead of a new one "
                             "in the working folder")
    parser.add_argument("--directory", metavar="DIR",
                        help="where the search projects go (kept); default: a temporary "
                             "folder, removed at the end")
    parser.add_argument("--python", action="append", default=[], metavar="BACKEND=PATH",
                        help="the interpreter of one backend (repeatable; default: this one)")
    parser.add_argument("--search-args", default="", type=str.split, metavar="'ARGS'",
                        help="more flags for every search, e.g. '--prune-warmup 2'")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds each search may run (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=0,
                        help="compute threads of every library in each search; 0: the "
                             "libraries' defaults (default)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if min(args.max_trials, args.epochs, args.train_examples, args.test_examples) < 1:
        parser.error("--max-trials, --epochs and the example counts must be >= 1")
    if any(flag.startswith("--objective") for flag in args.search_args):
        parser.error("the tables rank val_accuracy (maximized): leave --objective out")
    try:
        args.interpreters = interpreters(args.python, args.backends)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    limit_threads(args.threads)  # the searches inherit the environment
    machine = machine_info()
    work = Path(args.directory) if args.directory else \
        Path(tempfile.mkdtemp(prefix="kerasdnn-search-bench-"))
    data = Path(args.data) if args.data else work / "digits-mnist.npz"
    try:
        if not data.exists():
            write_data(data, args.train_examples, args.test_examples, args.seed)
        print(f"data: npz:{data} ({args.train_examples:,} train + {args.test_examples:,} test "
              f"28x28 images); projects in {work}", flush=True)
        results: dict[str, list[dict[str, Any]]] = {}
        for backend in args.backends:
            results[backend] = [run_search(args.interpreters[backend], backend, prune, args,
                                           data.resolve(), work.resolve())
                                for prune in args.prunes]
    finally:
        if not args.directory:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nRandom search, {args.max_trials} trials of {args.epochs} epoch(s), seed "
          f"{args.seed}, default space; {machine_line(machine)}")
    for backend, rows in results.items():
        print(f"\n### {backend}\n\n{format_table(rows)}\n")
        for line in notes(rows):
            print(f"- {line}")
    if args.json:
        report = {"command": command_line("benchmarks.search_pruning", argv),
                  "machine": machine, "results": results}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all("error" not in r for rows in results.values() for r in rows) else 1


# --------------------------------------------------------------------------- helpers


def _choices(text: str, allowed: Sequence[str]) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or any(name not in allowed for name in names):
        raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}, got {text!r}")
    return names


def _outcome(result: Mapping[str, Any]) -> str:
    if "epochs_trained" not in result:
        return result.get("error", "no trials.csv")
    return (f"{result['completed']} completed, {result['pruned']} pruned, "
            f"{result['failed']} failed, {result['epochs_trained']} epochs, best "
            f"{result['best_score']} (trial {result['best_trial']})")


if __name__ == "__main__":
    sys.exit(main())
