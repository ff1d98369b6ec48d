"""Does TensorBoard's HParams view open for a search on a backend other than
TensorFlow?  Runs one (issue 25's check) and asks TensorBoard itself.

Steps, each as a user would take them:

1. ``python -m tuning.search --tuner random --max-trials N --epochs E --dataset digits
   --seed S --prune P --tensorboard --directory DIR`` with ``KERAS_BACKEND`` set
   (default: ``jax``);
2. ``python -m tensorboard.main --logdir DIR/PROJECT/tensorboard --host 127.0.0.1
   --port PORT`` — the real TensorBoard server, in a subprocess;
3. the HTTP calls the HParams dashboard makes: ``GET /data/plugins_listing`` (is the
   ``hparams`` plugin enabled?), ``POST /data/plugin/hparams/experiment`` (the
   hyperparameters and metrics of the view's columns) and ``POST
   /data/plugin/hparams/session_groups`` (its rows: one session per trial, with its
   hyperparameters and metric values).

Prints what the view shows next to the search's ``trials.csv``, and exits 1 when
the view is empty or does not list one session per trial with every
hyperparameter and the objective.

This process imports no backend and no TensorBoard; of kerasdnn, only the run
directory's layout (:data:`kerasdnn.core.rundir.TENSORBOARD_DIR`).

Example:
    python -m benchmarks.hparams_view --backend jax --max-trials 5 --epochs 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import BACKENDS, REPO_ROOT, markdown_table
from kerasdnn.core.rundir import TENSORBOARD_DIR
from tuning.workers import free_port

PROJECT = "hparams-view"
STATUSES = ("STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING")
# trials.csv's own columns (tuning.results): every other column is a hyperparameter
RESULT_COLUMNS = ("trial_id", "status", "worker", "score", "seconds", "steps_per_epoch",
                  "best_epoch", "pruned_at_epoch", "pruned_value", "error")


def search_command(args: argparse.Namespace, directory: Path) -> list[str]:
    """The arguments of ``python`` for the search with ``--tensorboard``.

    Example:
        >>> args = parse_args(["--max-trials", "3"])
        >>> " ".join(search_command(args, Path("runs")))  # doctest: +ELLIPSIS
        '-m tuning.search --tuner random --max-trials 3 --epochs 2 --dataset digits ...'
    """
    return ["-m", "tuning.search", "--tuner", "random", "--max-trials", str(args.max_trials),
            "--epochs", str(args.epochs), "--dataset", args.dataset, "--seed", str(args.seed),
            "--prune", args.prune,
            *(["--prune-min-trials", str(args.prune_min_trials)] if args.prune != "none"
              else []),
            "--tensorboard", "--directory", str(directory), "--project-name", PROJECT,
            "--overwrite"]


def get_page(url: str, timeout: float = 30.0) -> tuple[int, str]:
    """The HTTP status and text of the page at ``url``."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode(errors="replace")


def call(url: str, body: Mapping[str, Any] | None = None, timeout: float = 30.0) -> Any:
    """GET ``url`` (``body`` None) or POST ``body`` as JSON; the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode())


def view_rows(groups: Sequence[Mapping[str, Any]], metrics: Sequence[str]
              ) -> list[dict[str, Any]]:
    """The view's table: one row per session group (a trial): its name, its sessions
    (runs), their status, its hyperparameters and the value of each metric.

    Example:
        >>> view_rows([{"name": "g", "hparams": {"units_0": 16.0},
        ...   "sessions": [{"name": "trial_0", "status": "STATUS_UNKNOWN"}],
        ...   "metricValues": [{"name": {"tag": "val_accuracy"}, "value": 0.5,
        ...                     "trainingStep": 1}]}], ["val_accuracy"])
        ... # doctest: +NORMALIZE_WHITESPACE
        [{'group': 'g', 'sessions': 'trial_0', 'status': 'STATUS_UNKNOWN',
          'hparams': {'units_0': 16.0}, 'val_accuracy': 0.5, 'val_accuracy_step': 1}]
    """
    rows = []
    for group in groups:
        values = {value["name"].get("tag"): value for value in group.get("metricValues", [])}
        row: dict[str, Any] = {
            "group": group.get("name"),
            "sessions": ",".join(session["name"] for session in group.get("sessions", [])),
            "status": ",".join(session.get("status", "") for session in group.get("sessions", [])),
            "hparams": dict(group.get("hparams", {})),
        }
        for metric in metrics:
            if metric in values:
                row[metric] = values[metric].get("value")
                row[f"{metric}_step"] = values[metric].get("trainingStep")
        rows.append(row)
    return rows


def domains(experiment: Mapping[str, Any]) -> str:
    """How the experiment declares its hyperparameters: each type (and domain kind)
    and how many have it.  The dashboard offers a filter only for a discrete domain
    or a ``DATA_TYPE_FLOAT64`` (an interval); others it still shows, with a console
    warning.

    Example:
        >>> domains({"hparamInfos": [{"name": "a", "type": "DATA_TYPE_UNSET"},
        ...     {"name": "b", "type": "DATA_TYPE_STRING", "domainDiscrete": ["x"]}]})
        'DATA_TYPE_STRING discrete: 1, DATA_TYPE_UNSET: 1'
    """
    kinds: dict[str, int] = {}
    for info in experiment.get("hparamInfos", []):
        domain = " discrete" if "domainDiscrete" in info else \
            " interval" if "domainInterval" in info else ""
        kind = f"{info.get('type', 'DATA_TYPE_UNSET')}{domain}"
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items())) or "none"


def check(rows: Sequence[Mapping[str, Any]], trials: Sequence[Mapping[str, str]],
          hparams: Sequence[str], objective: str) -> list[str]:
    """What is wrong with the view (empty: nothing): a session per trial of
    ``trials.csv``, each with every hyperparameter the experiment declares and a
    value of the objective.

    Example:
        >>> check([], [{"trial_id": "0"}], ["units_0"], "val_accuracy")
        ['the view lists no session']
    """
    if not rows:
        return ["the view lists no session"]
    problems = []
    shown = {row["sessions"] for row in rows}
    wanted = {f"trial_{trial['trial_id']}" for trial in trials}
    if shown != wanted:
        problems.append(f"sessions {sorted(shown)} are not the trials {sorted(wanted)}")
    for row in rows:
        trial = next((t for t in trials if f"trial_{t['trial_id']}" == row["sessions"]), {})
        active = [name for name in hparams if trial.get(name, "") != ""]  # declared, active
        missing = [name for name in active if name not in row["hparams"]]
        if missing:
            problems.append(f"{row['sessions']}: no value of {', '.join(missing)}")
        if row.get(objective) is None:
            problems.append(f"{row['sessions']}: no {objective}")
    return problems


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.hparams_view",
        description="Run a small search with --tensorboard, start TensorBoard on it and "
                    "print what its HParams view lists (exit 1: empty or incomplete).",
    )
    parser.add_argument("--backend", choices=BACKENDS, default="jax",
                        help="the search's Keras backend (default: %(default)s)")
    parser.add_argument("--max-trials", type=int, default=5, help="(default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=2, help="(default: %(default)s)")
    parser.add_argument("--dataset", default="digits", help="(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=3, help="(default: %(default)s)")
    parser.add_argument("--prune", choices=("none", "median", "asha"), default="median",
                        help="the search's --prune: pruned trials must show too "
                             "(default: %(default)s)")
    parser.add_argument("--prune-min-trials", type=int, default=1, metavar="N",
                        help="the search's --prune-min-trials: 1 prunes within a few trials, "
                             "so a pruned trial is in the view (default: %(default)s)")
    parser.add_argument("--directory", metavar="DIR",
                        help="where the search goes (kept); default: a temporary folder")
    parser.add_argument("--logdir", metavar="DIR",
                        help="skip the search: open this search's tensorboard folder "
                             "(its trials.csv one level up)")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter of the search and of TensorBoard "
                             "(default: this one)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds the search may run (default: %(default)s)")
    parser.add_argument("--wait", type=float, default=120.0,
                        help="seconds to wait for TensorBoard to list every trial "
                             "(default: %(default)s)")
    return parser.parse_args(argv)


def run_search(args: argparse.Namespace, directory: Path) -> Path:
    command = search_command(args, directory)
    print(f"$ KERAS_BACKEND={args.backend} python {' '.join(command)}", flush=True)
    environment = {**os.environ, "KERAS_BACKEND": args.backend, "TF_CPP_MIN_LOG_LEVEL": "2",
                   "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    done = subprocess.run([args.python, *command], cwd=REPO_ROOT, env=environment,
                          capture_output=True, text=True, timeout=args.timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith(("trial ", "starting"))]
    print("\n".join(f"  {line}" for line in lines))
    print(f"  (exit status {done.returncode}, {time.perf_counter() - start:.0f} s)", flush=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"the search failed: exit status {done.returncode}")
    return directory / PROJECT / TENSORBOARD_DIR


def open_view(logdir: Path, args: argparse.Namespace) -> tuple[dict, dict, list[dict]]:
    """Start TensorBoard on ``logdir``; the hparams plugin's listing entry, experiment
    and session groups once every trial run is listed (or ``--wait`` passed)."""
    port = free_port()
    command = [args.python, "-m", "tensorboard.main", "--logdir", str(logdir),
               "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "2"]
    print(f"$ {' '.join(['python', *command[1:]])}", flush=True)
    base = f"http://127.0.0.1:{port}"
    runs = len(list(logdir.glob("trial_*")))
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        try:
            found = _poll(server, log, base, runs, args.wait)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    print(f"  TensorBoard at {base}: {runs} trial run(s) in the logdir", flush=True)
    return found


def _poll(server: subprocess.Popen, log: Any, base: str, runs: int,
          wait: float) -> tuple[dict, dict, list[dict]]:
    deadline = time.monotonic() + wait
    listing: dict = {}
    experiment: dict = {}
    groups: list[dict] = []
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise SystemExit(f"TensorBoard exited ({server.returncode}):\n"
                             f"{log.read().decode(errors='replace')[-3000:]}")
        try:
            status, page = get_page(f"{base}/")  # the page a browser opens first
            listing = {"index page": f"HTTP {status}, {len(page):,} characters",
                       **call(f"{base}/data/plugins_listing").get("hparams", {})}
            if listing.get("enabled"):
                experiment = call(f"{base}/data/plugin/hparams/experiment",
                                  {"experimentName": "", "includeMetrics": True})
                answer = call(f"{base}/data/plugin/hparams/session_groups", {
                    "experimentName": "", "allowedStatuses": list(STATUSES),
                    "colParams": [], "startIndex": 0, "sliceSize": 1000,
                    "includeMetrics": True})
                groups = answer.get("sessionGroups", [])
                if len(groups) >= runs and all(g.get("metricValues") for g in groups):
                    break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not serving yet
        time.sleep(1.0)
    return listing, experiment, groups


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    scratch = None
    if args.logdir:
        logdir = Path(args.logdir)
    else:
        if args.directory:
            directory = Path(args.directory)
        else:
            scratch = tempfile.TemporaryDirectory(prefix="kerasdnn-hparams-")
            directory = Path(scratch.name)
        logdir = run_search(args, directory.resolve())
    try:
        with (logdir.parent / "trials.csv").open(newline="", encoding="utf-8") as handle:
            trials = list(csv.DictReader(handle))
        listing, experiment, groups = open_view(logdir, args)
    finally:
        if scratch is not None:
            scratch.cleanup()
    hparams = [info["name"] for info in experiment.get("hparamInfos", [])]
    metrics = [info["name"]["tag"] for info in experiment.get("metricInfos", [])]
    print(f"\n/ and /data/plugins_listing['hparams']: {json.dumps(listing, sort_keys=True)}")
    print(f"experiment: {len(hparams)} hyperparameter(s): {', '.join(hparams)}")
    print(f"            {len(metrics)} metric(s): {', '.join(metrics)}")
    print(f"            hyperparameter types and domains: {domains(experiment)}")
    rows = view_rows(groups, metrics)
    objective = metrics[0] if metrics else "val_accuracy"
    shown = [name for name in metrics if any(name in row for row in rows)]
    print(f"session groups: {len(rows)} (trials in trials.csv: {len(trials)})\n")
    by_run = {f"trial_{t['trial_id']}": t for t in trials}
    table = []
    for row in sorted(rows, key=lambda r: r["sessions"]):
        trial = by_run.get(row["sessions"], {})
        table.append([
            row["sessions"], row["status"], trial.get("status", "?"),
            " ".join(f"{k}={_short(v)}" for k, v in sorted(row["hparams"].items())),
            *(_metric(row, name) for name in shown),
        ])
    print(markdown_table(["session (run)", "view status", "trials.csv status",
                          "hyperparameters", *shown], table))
    problems = check(rows, trials, hparams, objective)
    if not listing.get("enabled"):
        problems.insert(0, "the hparams plugin is not enabled in /data/plugins_listing")
    if not hparams:
        problems.append("the experiment declares no hyperparameter")
    print()
    for problem in problems:
        print(f"PROBLEM: {problem}")
    if not problems:
        print(f"OK: the HParams view lists {len(rows)} session(s), one per trial, with "
              f"{len(hparams)} hyperparameter column(s) and {objective}")
    return 1 if problems else 0


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _metric(row: Mapping[str, Any], name: str) -> str:
    if row.get(name) is None:
        return ""
    return f"{row[name]:.4f} @{row.get(f'{name}_step')}"


if __name__ == "__main__":
    sys.exit(main())
