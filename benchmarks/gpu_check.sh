#!/usr/bin/env bash
# The epoch benchmark on an NVIDIA GPU, for every backend, with device prefetch
# on and then off (its kerasdnn row takes the input path kerasdnn.train resolves:
# resident on JAX and PyTorch, the stream on TensorFlow with a GPU; the "kerasdnn,
# tf.data stream" row the old feed), then
# (time left) the PyTorch step profile (the native path part by part; premade batches,
# tf.data feed and resident side by side); prints nvidia-smi and the tables. Finishes
# in under 8 minutes: each backend's subprocess gets a share of what is left of the
# budget, so one hang costs its share only (its rows then read "error: timed out").
# With more than one GPU, then one data-parallel epoch (`kerasdnn.train --data-parallel`)
# over all of them on JAX and TensorFlow; then, when a couple of minutes are left (20 s
# or more for each of its subprocesses, a minute kept for the step profile), one round
# of benchmarks.epoch_grid (GRID_SIZES × GRID_BATCH_SIZES); the PyTorch step profile
# last, when a minute or more is left.
#
# Usage:
#   benchmarks/gpu_check.sh [WHEEL_DIR]
#
#   WHEEL_DIR  optional folder of CUDA wheels (jax[cuda12] plugin, torch+cu12x,
#              tensorflow, ...) installed offline first; without it the check uses
#              what is installed.
# Environment: PYTHON (default: python), OUT (where the JSON goes; default: a temp folder),
#              BUDGET_S (default: 470), EXAMPLES (default: 60000), REPEATS (default: 2),
#              BACKENDS (default: tensorflow,jax,torch), GRID_SIZES (default: 10000,60000),
#              GRID_BATCH_SIZES (default: 100,1000).
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
BUDGET_S=${BUDGET_S:-470}
EXAMPLES=${EXAMPLES:-60000}
REPEATS=${REPEATS:-2}
BACKENDS=${BACKENDS:-tensorflow,jax,torch}
GRID_SIZES=${GRID_SIZES:-10000,60000}
GRID_BATCH_SIZES=${GRID_BATCH_SIZES:-100,1000}
RESULTS=${OUT:-$(mktemp -d)}
IFS=, read -r -a backend_list <<< "$BACKENDS"
WORKERS=$(( ${#backend_list[@]} + 1 ))  # one per backend, and the pure PyTorch loop
export TF_CPP_MIN_LOG_LEVEL=2

if [ $# -ge 1 ] && [ -n "$1" ]; then
    echo "== installing wheels from $1 (offline)"
    timeout 150 "$PYTHON" -m pip install --quiet --no-index --find-links "$1" "$1"/*.whl \
        || echo "!! wheel install failed or timed out; going on with what is installed"
fi

echo "== nvidia-smi"
nvidia-smi || echo "!! nvidia-smi failed: no NVIDIA driver visible"
"$PYTHON" -c 'import importlib.metadata as m
for p in ("keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "jax-cuda12-plugin", "torch"):
    try: print(f"{p} {m.version(p)}")
    except m.PackageNotFoundError: pass'

status=0
runs_left=2
for prefetch in on off; do
    left=$((BUDGET_S - SECONDS - 5))
    # benchmarks.epoch runs REPEATS rounds of one subprocess per worker
    per_worker=$((left / (WORKERS * REPEATS * runs_left)))
    [ "$per_worker" -gt 120 ] && per_worker=120
    if [ "$per_worker" -lt 20 ]; then
        echo "!! out of time budget before device prefetch $prefetch"; status=1; break
    fi
    echo
    echo "== epoch benchmark on the GPU, device prefetch $prefetch" \
         "(${per_worker} s per backend, ${SECONDS} s elapsed)"
    timeout $((per_worker * WORKERS * REPEATS + 10)) "$PYTHON" -m benchmarks.epoch \
        --backends "$BACKENDS" --examples "$EXAMPLES" --repeats "$REPEATS" \
        --device-prefetch "$prefetch" --timeout "$per_worker" \
        --json "$RESULTS/gpu-epoch-prefetch-$prefetch.json" \
        2> "$RESULTS/gpu-epoch-prefetch-$prefetch.log" \
        || { status=1; echo "!! benchmark exited with an error; log tail:"; \
             tail -n 30 "$RESULTS/gpu-epoch-prefetch-$prefetch.log"; }
    runs_left=$((runs_left - 1))
done

# One data-parallel epoch over all GPUs, per backend that has it, when there are several
# (within what is left of the budget).
gpus=$(nvidia-smi --list-gpus 2>/dev/null | wc -l)
if [ "$gpus" -gt 1 ]; then
    for backend in jax tensorflow; do
        case ",$BACKENDS," in *",$backend,"*) ;; *) continue ;; esac
        left=$((BUDGET_S - SECONDS - 5))
        [ "$left" -gt 120 ] && left=120
        if [ "$left" -lt 30 ]; then
            echo "!! out of time budget before the data-parallel epoch on $backend"; status=1; break
        fi
        echo
        echo "== one data-parallel epoch over $gpus GPUs, $backend (${SECONDS} s elapsed)"
        run="$RESULTS/data-parallel-$backend"
        if KERAS_BACKEND=$backend timeout "$left" "$PYTHON" -m kerasdnn.train --data-parallel \
               --dataset digits --epochs 1 --quiet --out "$run" 2> "$run.log"; then
            "$PYTHON" -c 'import json, sys; record = json.load(open(sys.argv[1]))
print(record["distribution"], json.load(open(sys.argv[2])))' \
                "$run/config.json" "$run/epoch_times.json"
        else
            status=1; echo "!! data-parallel $backend failed; log tail:"; tail -n 20 "$run.log"
        fi
    done
fi
# kerasdnn (both input paths), stock Keras at its best and pure PyTorch over epoch sizes
# × batch sizes, one round, when its subprocesses get 20 s or more each.
left=$((BUDGET_S - SECONDS - 5))
[[ ",$BACKENDS," == *",torch,"* ]] && left=$((left - 60))  # the step profile's minute
IFS=, read -r -a grid_sizes <<< "$GRID_SIZES"
IFS=, read -r -a grid_batches <<< "$GRID_BATCH_SIZES"
grid_workers=$(( ${#grid_sizes[@]} * ${#grid_batches[@]} * WORKERS ))
[ "$grid_workers" -gt 0 ] || grid_workers=1
per_worker=$((left / grid_workers))
[ "$per_worker" -gt 120 ] && per_worker=120
echo
if [ "$left" -ge 120 ] && [ "$per_worker" -ge 20 ]; then
    echo "== epoch grid on the GPU: sizes $GRID_SIZES × batch sizes $GRID_BATCH_SIZES," \
         "1 round (${per_worker} s per backend, ${SECONDS} s elapsed)"
    timeout $((per_worker * grid_workers + 10)) "$PYTHON" -m benchmarks.epoch_grid \
        --backends "$BACKENDS" --sizes "$GRID_SIZES" --batch-sizes "$GRID_BATCH_SIZES" \
        --repeats 1 --timeout "$per_worker" --json "$RESULTS/gpu-epoch-grid.json" \
        2> "$RESULTS/gpu-epoch-grid.log" \
        || { status=1; echo "!! epoch grid exited with an error; log tail:"; \
             tail -n 30 "$RESULTS/gpu-epoch-grid.log"
             # the cells measured before it stopped (the JSON is written after each)
             [ -f "$RESULTS/gpu-epoch-grid.json" ] && "$PYTHON" -c 'import json, sys
from benchmarks.epoch_grid import format_grid
print(format_grid(json.load(open(sys.argv[1]))["cells"]))' "$RESULTS/gpu-epoch-grid.json"; }
else
    echo "== epoch grid skipped: ${left} s left for its $grid_workers subprocesses" \
         "(a larger BUDGET_S runs it)"
fi
# The PyTorch step part by part (native path vs Keras path, classic loop) on the GPU.
left=$((BUDGET_S - SECONDS - 5))
if [[ ",$BACKENDS," == *",torch,"* ]] && [ "$left" -ge 60 ]; then
    echo
    echo "== PyTorch step profile on the GPU (${left} s left)"
    timeout "$left" "$PYTHON" -m benchmarks.step_profile --backends torch --repeats 3 \
        --steps 50 --timeout $((left - 10)) --json "$RESULTS/gpu-step-profile-torch.json" \
        2> "$RESULTS/gpu-step-profile-torch.log" \
        || { status=1; echo "!! step profile exited with an error; log tail:"; \
             tail -n 30 "$RESULTS/gpu-step-profile-torch.log"; }
fi
echo
echo "== done in ${SECONDS} s; JSON and logs in $RESULTS"
exit $status
