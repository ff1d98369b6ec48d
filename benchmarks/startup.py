"""Start-up time of the command-line tool: wall time of
``python -m kerasdnn.train --help`` and of ``python -c "import kerasdnn"`` per
backend (each in a fresh subprocess, after one untimed run), and a check that
``--help`` imports none of TensorFlow, JAX or PyTorch.

Example:
    python -m benchmarks.startup --backends tensorflow,jax,torch --repeats 5
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from benchmarks._common import (
    BACKENDS,
    machine_info,
    machine_line,
    markdown_table,
    parse_backends,
    run_python,
    seconds_cell,
    summarize,
)

HEAVY_MODULES = ("tensorflow", "jax", "torch")
HELP_TARGET_SECONDS = 1.0
COMMANDS = {
    "python -m kerasdnn.train --help": ["-m", "kerasdnn.train", "--help"],
    'python -c "import kerasdnn"': ["-c", "import kerasdnn"],
}
MARKER = "benchmarks.startup imported:"

# Runs a module as ``python -m`` would, then prints which watched modules it imported.
_WRAPPER = f"""
import json, runpy, sys
module, watched, argv = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
sys.argv = [module, *argv]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
except SystemExit as exit:
    if exit.code not in (None, 0):
        raise
print({MARKER!r}, json.dumps(sorted(name for name in watched if name in sys.modules)))
"""


def imported_modules(module: str, argv: Sequence[str], *, backend: str | None = None,
                     watched: Sequence[str] = HEAVY_MODULES, timeout: float = 120) -> list[str]:
    """Which of ``watched`` are in ``sys.modules`` after ``python -m MODULE ARGV``.

    Raises RuntimeError when the command fails.

    Example:
        >>> imported_modules("json.tool", ["--help"], watched=["json", "numpy"])
        ['json']
    """
    done = run_python(["-c", _WRAPPER, module, json.dumps(list(watched)), *argv],
                      backend=backend, timeout=timeout)
    if done.failure:
        raise RuntimeError(f"python -m {module} {' '.join(argv)}: {done.failure}")
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    raise RuntimeError(f"python -m {module} {' '.join(argv)} printed no import list")


def time_command(args: Sequence[str], backend: str, repeats: int) -> dict[str, Any]:
    """Median and [min–max] wall time of ``python ARGS`` after one untimed run."""
    seconds = []
    for attempt in range(repeats + 1):
        done = run_python(args, backend=backend, timeout=300)
        if done.failure:
            raise RuntimeError(done.failure)
        if attempt:
            seconds.append(done.seconds)
    return summarize(seconds)


def measure(backends: Sequence[str], repeats: int) -> list[dict[str, Any]]:
    """One row per (backend, command): timings, and for ``--help`` the heavy imports."""
    rows = []
    for backend in backends:
        for command, args in COMMANDS.items():
            print(f"benchmarks.startup: {backend}: {command}", file=sys.stderr, flush=True)
            row: dict[str, Any] = {"backend": backend, "command": command}
            try:
                row.update(time_command(args, backend, repeats))
                if "--help" in args:
                    row["heavy_imports"] = imported_modules("kerasdnn.train", ["--help"],
                                                            backend=backend)
            except RuntimeError as error:
                row["error"] = str(error)
            rows.append(row)
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Backend, command, wall seconds, and the ``--help`` checks."""
    lines = []
    for row in rows:
        if "error" in row:
            lines.append([row["backend"], row["command"], f"error: {row['error'][:110]}", "", ""])
            continue
        checks = ["", ""]
        if "heavy_imports" in row:
            heavy = row["heavy_imports"]
            checks = [
                "none" if not heavy else "IMPORTED " + ", ".join(heavy),
                "met" if row["median"] < HELP_TARGET_SECONDS else "MISSED",
            ]
        lines.append([row["backend"], row["command"], seconds_cell(row), *checks])
    header = ["backend", "command", "wall s: median [min–max]", "backends imported",
              f"< {HELP_TARGET_SECONDS:g} s"]
    return markdown_table(header, lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.startup",
        description="Wall time of `python -m kerasdnn.train --help` and `import kerasdnn`, "
                    "and a check that --help imports no backend.",
    )
    parser.add_argument("--backends", default=",".join(BACKENDS), type=parse_backends,
                        help="comma-separated Keras backends (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs of each command (default: %(default)s)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    machine = machine_info()
    rows = measure(args.backends, args.repeats)
    print(f"\nStart-up, {args.repeats} runs each after one untimed run; {machine_line(machine)}\n")
    print(format_table(rows))
    if args.json:
        from kerasdnn.core.io import atomic_write_json

        atomic_write_json(args.json, {"machine": machine, "repeats": args.repeats,
                                      "target_help_seconds": HELP_TARGET_SECONDS, "rows": rows})
    failed = any("error" in row or row.get("heavy_imports") for row in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
