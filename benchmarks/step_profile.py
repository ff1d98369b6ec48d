"""Where one training step of the seed network goes, per backend: milliseconds per
step (batch 100, 784-500-250-10, SGD momentum) of a ladder of ever fuller steps,
measured side by side in one subprocess per backend:

- **GEMMs alone**: the step's eight matrix multiplies at their real shapes (three
  forward; three weight gradients; two input gradients, none for the first
  layer), through the backend's matmul (compiled as Keras compiles it, those
  of 10 steps per call);
- **FLOP floor**: 6 × parameters × 100 at the large-GEMM rate of ``benchmarks.epoch``;
- **framework step** (JAX, PyTorch): the same step written directly in the framework
  (``jax.jit`` of ``value_and_grad`` with a momentum update, also as a
  ``lax.scan`` of 10 steps; the classic PyTorch loop);
- **kerasdnn, premade batches**: ``fit`` of ``kerasdnn.build_model()`` on batches
  already in memory (no ``tf.data``), as many steps per execution as ``kerasdnn.train``;
- **kerasdnn, pipelines.feed**: the ``tf.data`` stream (``pipelines.load(repeat=True)``
  → ``pipelines.feed.for_fit``), so the difference to the row above is the input pipeline;
- **kerasdnn, resident**: the resident path, what ``kerasdnn.train`` takes by
  default where the examples fit (``for_fit(stream, resident=True)``: the examples
  kept on the device, each batch gathered there), the same batches; on TensorFlow,
  where ``kerasdnn.train`` takes it under XLA only, also with ``jit_compile=True``;
- on PyTorch, the parts of kerasdnn's eager step next to those of the classic loop:
  forward + loss (+ backward) on the native path (``torch`` functions on the Keras
  variables' tensors, what ``train_step`` runs for this network) and through the
  Keras layers (the Keras path, ``native_step = False``), the gradient norm and
  finite check, the optimizer update and the metrics.  Each of these rows starts its
  timings from the same weights and optimizer state, and the update rows apply a real
  step's gradients (:func:`step_gradients`): SGD's momentum left to shrink turns
  subnormal, which some CPUs compute several times slower.

Every ``÷ floor`` divides by one machine-level floor: the best of the backends'
floors in the run (each backend's own is on its floor row).

Example:
    python -m benchmarks.step_profile --backends tensorflow,jax,torch
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import (
    BACKENDS,
    add_worker_arguments,
    command_line,
    compiled,
    limit_threads,
    machine_info,
    machine_line,
    markdown_table,
    parse_backends,
    run_worker_process,
    summarize,
)
from benchmarks.epoch_paths import (
    BATCH_SIZE,
    DEFAULT_STEPS_PER_EXECUTION,
    FLOPS_PER_EXAMPLE,
    SEED,
    feeds_from_host,
    fit_epoch_seconds,
    keras_device,
    keras_gemm_gflops,
    kerasdnn_model,
    kerasdnn_stream,
    make_data,
)

LAYERS = ((784, 500), (500, 250), (250, 10))
SCAN_STEPS = 10


def gemm_shapes(batch: int = BATCH_SIZE) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """``(a_shape, b_shape)`` of the eight matmuls of one step of the seed network.

    Example:
        >>> len(gemm_shapes()), gemm_shapes()[0]
        (8, ((100, 784), (784, 500)))
    """
    forward = [((batch, fan_in), (fan_in, fan_out)) for fan_in, fan_out in LAYERS]
    weight_grads = [((fan_in, batch), (batch, fan_out)) for fan_in, fan_out in LAYERS]
    input_grads = [((batch, fan_out), (fan_out, fan_in)) for fan_in, fan_out in LAYERS[1:]]
    return forward + weight_grads + input_grads


def per_step_ms(run: Callable[[], Any], steps: int, repeats: int,
                setup: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Median [min–max] milliseconds per step of ``run()`` (which runs ``steps`` steps
    and waits for them), after one warm-up call; ``setup()``, untimed, before each call."""
    setup = setup or (lambda: None)
    setup()
    run()
    seconds = []
    for _ in range(repeats):
        setup()
        start = time.perf_counter()
        run()
        seconds.append((time.perf_counter() - start) / steps * 1000)
    return summarize(seconds)


# --------------------------------------------------------------------------- worker side


def gemms_row(backend: str, repeats: int, steps_per_call: int = SCAN_STEPS) -> dict[str, Any]:
    """The eight matmuls of ``steps_per_call`` steps (distinct operands, so nothing is
    computed once for all) per compiled call, so that the call's own overhead
    (large for a ``tf.function``) is shared as in ``fit`` with steps per execution."""
    import keras
    import numpy as np

    rng = np.random.default_rng(SEED)
    operands = [[(keras.ops.convert_to_tensor(rng.standard_normal(a, dtype=np.float32)),
                  keras.ops.convert_to_tensor(rng.standard_normal(b, dtype=np.float32)))
                 for a, b in gemm_shapes()] for _ in range(steps_per_call)]

    def matmuls(operands: Any) -> Any:
        return [keras.ops.matmul(a, b) for pairs in operands for a, b in pairs]

    matmuls = compiled(backend, matmuls)

    calls = 5

    def run() -> None:
        for _ in range(calls):
            results = matmuls(operands)
        keras.ops.convert_to_numpy(results[-1][0, 0])

    return per_step_ms(run, calls * steps_per_call, repeats)


def kerasdnn_rows(repeats: int, steps: int, workdir: Path) -> dict[str, dict[str, Any]]:
    """The kerasdnn step on premade batches, then through the ``tf.data`` stream, then
    on the resident path."""
    import keras
    import numpy as np

    import pipelines.feed

    splits, per_epoch = kerasdnn_stream(*make_data(steps * BATCH_SIZE), workdir)
    premade = [tuple(np.ascontiguousarray(part) for part in batch) for batch in
               itertools.islice(pipelines.feed.host_batches(splits.stream), per_epoch)]

    def fitted(data: Any, jit_compile: bool | str = "auto") -> dict[str, Any]:
        model = kerasdnn_model(per_epoch, DEFAULT_STEPS_PER_EXECUTION, jit_compile)
        seconds = fit_epoch_seconds(model, data, repeats, steps_per_epoch=per_epoch)
        return {**summarize([s / per_epoch * 1000 for s in seconds]),
                "steps_per_execution": model.steps_per_execution}

    if not feeds_from_host(keras.backend.backend()):
        import tensorflow as tf

        first = tf.data.Dataset.from_tensor_slices(tuple(np.stack(parts) for parts in
                                                         zip(*premade, strict=True)))
        premade_input = first.cache().repeat()
    else:
        premade_input = (batch for batch in itertools.cycle(premade))  # Keras takes generators
    rows = {"kerasdnn, premade batches": fitted(premade_input),
            "kerasdnn, pipelines.feed": fitted(pipelines.feed.for_fit(splits.stream)),
            "kerasdnn, resident": fitted(pipelines.feed.for_fit(splits.stream, resident=True))}
    if keras.backend.backend() == "tensorflow":  # its resident path's default: under XLA only
        rows["kerasdnn, resident, jit_compile=True"] = fitted(
            pipelines.feed.for_fit(splits.stream, resident=True), jit_compile=True)
    return rows


def jax_rows(repeats: int) -> dict[str, dict[str, Any]]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(SEED)
    params = [(jnp.asarray(rng.standard_normal(shape, dtype=np.float32) * 0.05),
               jnp.zeros(shape[1])) for shape in LAYERS]
    state = (params, jax.tree.map(jnp.zeros_like, params))
    x = jnp.asarray(rng.random((SCAN_STEPS, BATCH_SIZE, 784), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, 10, (SCAN_STEPS, BATCH_SIZE)))

    def loss(params: Any, xb: Any, yb: Any) -> Any:
        h = xb
        for index, (w, b) in enumerate(params):
            h = h @ w + b
            h = jax.nn.relu(h) if index < len(params) - 1 else h
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(h), yb[:, None], 1))

    def step(state: Any, batch: Any) -> tuple[Any, Any]:
        params, velocity = state
        value, grads = jax.value_and_grad(loss)(params, *batch)
        velocity = jax.tree.map(lambda v, g: 0.9 * v - 0.01 * g, velocity, grads)
        return (jax.tree.map(jnp.add, params, velocity), velocity), value

    one = jax.jit(step, donate_argnums=0)
    scanned = jax.jit(lambda state, batches: jax.lax.scan(step, state, batches), donate_argnums=0)
    holder = {"state": state}

    def run_one() -> None:
        for i in range(SCAN_STEPS * 5):
            holder["state"], value = one(holder["state"], (x[i % SCAN_STEPS], y[i % SCAN_STEPS]))
        value.block_until_ready()

    def run_scanned() -> None:
        for _ in range(5):
            holder["state"], values = scanned(holder["state"], (x, y))
        values.block_until_ready()

    return {"JAX step (jit), 1 per call": per_step_ms(run_one, SCAN_STEPS * 5, repeats),
            f"JAX step (jit), {SCAN_STEPS} per lax.scan": per_step_ms(
                run_scanned, SCAN_STEPS * 5, repeats)}


def step_gradients(model: Any, x: Any, y: Any) -> list[Any]:
    """The gradients of ``model``'s loss on one batch (PyTorch), for the rows that time
    the update or the norm alone, applied again and again.

    Real gradients, not zeros: zeros would leave SGD's momentum to shrink by 0.9 per
    update into float32's subnormal range (after about 800 updates), where Intel CPUs
    compute 5 to 10 times slower, so the row would time subnormal arithmetic, not the
    update. With a fixed gradient ``g`` the momentum settles at ``-lr * g / (1 - momentum)``
    (and stays 0 where ``g`` is 0, if the first update had these gradients too).

    Example:
        >>> import kerasdnn, torch
        >>> model = kerasdnn.build_model(input_shape=(4,), hidden_units=(3,))
        >>> grads = step_gradients(model, torch.ones(2, 4), torch.tensor([0, 1]))
        >>> [tuple(g.shape) for g in grads]
        [(4, 3), (3,), (3, 10), (10,)]
    """
    import torch

    weights = [variable.value for variable in model.trainable_weights]
    loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True), training=True)
    return [gradient.detach() for gradient in torch.autograd.grad(loss, weights)]


def torch_rows(repeats: int) -> dict[str, dict[str, Any]]:
    """The classic loop, and kerasdnn's eager step and the classic loop part by part."""
    import numpy as np
    import torch
    from torch import nn

    import kerasdnn
    from kerasdnn.network.steps import is_finite
    from kerasdnn.network.steps.torch import fused_global_norm
    from kerasdnn.network.steps.torch_native import metrics_for

    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    x = torch.from_numpy(rng.random((BATCH_SIZE, 784), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, 10, BATCH_SIZE))
    net = nn.Sequential(nn.Linear(784, 500), nn.ReLU(), nn.Linear(500, 250), nn.ReLU(),
                        nn.Linear(250, 10))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    model = kerasdnn.build_model()
    y32 = y.to(torch.int32)
    # Before the first update, so that it leaves a zero momentum where they are zero
    # (those entries then stay zero, never subnormal: see step_gradients).
    gradients = step_gradients(model, x, y32)
    model.train_on_batch(x, y32)  # builds the optimizer and the metrics
    if model.native_plan() is None:
        raise RuntimeError("kerasdnn.build_model() did not get the native PyTorch step")
    n = 50

    def repeated(body: Callable[[], Any], times: int = n) -> Callable[[], None]:
        def run() -> None:
            for _ in range(times):
                body()
        return run

    def classic_step() -> None:
        optimizer.zero_grad()
        criterion(net(x), y).backward()
        optimizer.step()

    def keras_forward_loss() -> Any:
        model.zero_grad()
        y_pred = model(x, training=True)
        return y_pred, model.compute_loss(x=x, y=y32, y_pred=y_pred, training=True)

    def keras_backward() -> None:
        keras_forward_loss()[1].backward()

    plan = model.native_plan()
    weights = [v.value for v in model.trainable_weights]

    def native_forward_loss() -> Any:
        y_pred, _ = plan.forward(x)
        return plan.loss(y32, y_pred)

    def native_backward() -> None:
        torch.autograd.grad(native_forward_loss(), weights)

    def keras_path_step() -> None:
        model.native_step = False
        try:
            model.train_step((x, y32))
        finally:
            model.native_step = True

    y_pred = model(x, training=True).detach()

    def norm_and_guard() -> None:
        with torch.no_grad():
            bool(is_finite(torch.tensor(1.0), fused_global_norm(gradients)))

    def keras_update() -> None:
        with torch.no_grad():
            model.optimizer.apply(gradients, model.trainable_weights)

    native_metrics = metrics_for(model, plan)
    one = torch.tensor(1.0)

    def native_metrics_update() -> None:
        native_metrics.update(one, one, y32, y_pred)

    def native_metrics_logs() -> None:
        native_metrics.update(one, one, y32, y_pred)
        native_metrics.results()

    train_function = model.make_train_function()
    call = [(x, y32)] * DEFAULT_STEPS_PER_EXECUTION
    calls = max(1, n // len(call))  # as many steps as the one-step rows
    per_call = f"kerasdnn train_function, {DEFAULT_STEPS_PER_EXECUTION} steps per call (native)"

    def keras_metrics() -> None:
        with torch.no_grad():
            model._loss_tracker.update_state(torch.tensor(1.0), sample_weight=BATCH_SIZE)
            model.grad_norm_tracker.update_state(torch.tensor(1.0))
            model.compute_metrics(x, y32, y_pred, sample_weight=None)

    def classic_backward() -> None:
        optimizer.zero_grad()
        criterion(net(x), y).backward()

    rows = {
        "PyTorch classic loop, whole step": repeated(classic_step),
        "kerasdnn train_step, whole step (native path)": repeated(
            lambda: model.train_step((x, y32))),
        per_call: repeated(lambda: train_function(call), calls),
        "kerasdnn train_step, whole step (Keras path)": repeated(keras_path_step),
        "PyTorch: forward + loss": repeated(lambda: criterion(net(x), y)),
        "kerasdnn native: forward + loss": repeated(native_forward_loss),
        "kerasdnn Keras path: forward + loss (Keras layers)": repeated(keras_forward_loss),
        "PyTorch: forward + loss + backward": repeated(classic_backward),
        "kerasdnn native: forward + loss + backward": repeated(native_backward),
        "kerasdnn Keras path: forward + loss + backward": repeated(keras_backward),
        "kerasdnn: global norm + finite check (one host read)": repeated(norm_and_guard),
        "PyTorch: optimizer.step()": repeated(optimizer.step),
        "kerasdnn: optimizer.apply()": repeated(keras_update),
        "kerasdnn native: loss, grad_norm and accuracy metrics": repeated(
            native_metrics_update),
        "kerasdnn native: metrics and their logs read out": repeated(native_metrics_logs),
        "kerasdnn Keras path: loss, grad_norm and accuracy metrics": repeated(keras_metrics),
    }
    # The rows that train start from the same weights and optimizer state each time: one
    # batch trained on for long (thousands of steps) leaves much of the momentum subnormal
    # (float32 below 1.2e-38), which Intel CPUs compute several times slower, and the
    # row would time that, not the step (BENCHMARKS.md, the step profile of 2026-12-08).
    kerasdnn_state = [v.value.detach().clone() for v in (*model.variables,
                                                          *model.optimizer.variables)]
    classic_state = (copy.deepcopy(net.state_dict()), copy.deepcopy(optimizer.state_dict()))

    def restore() -> None:
        with torch.no_grad():
            for variable, value in zip((*model.variables, *model.optimizer.variables),
                                       kerasdnn_state, strict=True):
                variable.assign(value)
        net.load_state_dict(classic_state[0])
        optimizer.load_state_dict(classic_state[1])

    return {name: per_step_ms(run, calls * len(call) if name == per_call else n, repeats,
                              setup=restore)
            for name, run in rows.items()}


# Rows of a framework's own parts, measured before or after the kerasdnn rows.
_FRAMEWORK_ROWS: dict[str, tuple[Any, Any]] = {
    "jax": (("JAX step", jax_rows), None),
    "torch": (None, ("PyTorch parts", torch_rows)),
}


def run_worker(backend: str, args: argparse.Namespace) -> None:
    """Measure every part on ``backend``; a part that fails becomes an error row."""
    rows: dict[str, Any] = {}

    def emit(name: str, measure: Callable[[], dict[str, Any]], many: bool = False) -> None:
        try:
            rows.update(measure() if many else {name: measure()})
        except Exception as error:  # reported as an error row
            rows[name] = {"error": f"{type(error).__name__}: {error}".splitlines()[0]}

    device = keras_device(backend)
    emit("GEMMs alone (8 matmuls of one step)", lambda: gemms_row(backend, args.repeats))
    emit("FLOP floor", lambda: summarize([FLOPS_PER_EXAMPLE * BATCH_SIZE * 1000 / (
        keras_gemm_gflops(backend, device, 1.0) * 1e9)]))
    before, after = _FRAMEWORK_ROWS.get(backend, (None, None))
    if before:
        emit(before[0], lambda: before[1](args.repeats), many=True)
    with tempfile.TemporaryDirectory(prefix="kerasdnn-profile-") as workdir:
        emit("kerasdnn", lambda: kerasdnn_rows(args.repeats, args.steps, Path(workdir)),
             many=True)
    if after:
        emit(after[0], lambda: after[1](args.repeats), many=True)
    Path(args.result).write_text(json.dumps({"backend": backend, "device": device,
                                             "rows": rows}))


# --------------------------------------------------------------------------- parent side


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """One table: a row per (backend, part), ms per step and its ratio to the
    machine-level floor (the lowest floor of any backend in ``results``)."""
    lines = []
    floors = [result["rows"].get("FLOP floor", {}).get("median") for result in results]
    floor = min((value for value in floors if value), default=None)
    for result in results:
        for name, row in result["rows"].items():
            backend = f"{result['backend']} ({result.get('device', '?')})"
            if "error" in row:
                lines.append([backend, name, f"error: {row['error'][:100]}", ""])
                continue
            cell = f"{row['median']:.2f} [{row['min']:.2f}–{row['max']:.2f}]"
            if "steps_per_execution" in row:
                name += f" ({row['steps_per_execution']} steps/execution)"
            lines.append([backend, name, cell,
                          f"{row['median'] / floor:.2f}" if floor else ""])
    return markdown_table(["backend", "part", "ms/step: median [min–max]", "÷ floor"], lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.step_profile",
        description="Milliseconds per step of the seed network, part by part, per backend.",
    )
    parser.add_argument("--backends", default=",".join(BACKENDS), type=parse_backends,
                        help="comma-separated Keras backends (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed repetitions of each part (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=200,
                        help="steps per epoch of the two fit rows (default: %(default)s)")
    add_worker_arguments(parser, BACKENDS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.steps < 10:
        parser.error("--repeats must be >= 1 and --steps >= 10")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:  # launched by run_worker_process, TensorFlow's log already quiet
        limit_threads(args.threads)
        run_worker(args.worker, args)
        return 0
    machine = machine_info()
    results = []
    for backend in args.backends:
        print(f"benchmarks.step_profile: {backend} ...", file=sys.stderr, flush=True)
        done, text = run_worker_process(
            "benchmarks.step_profile", backend,
            ["--repeats", str(args.repeats), "--steps", str(args.steps),
             "--threads", str(args.threads)],
            backend=backend, timeout=args.timeout)
        if text is not None:
            results.append(json.loads(text))
        else:
            failure = done.failure or "no result written"
            results.append({"backend": backend, "rows": {"all": {"error": failure}}})
            print(done.stderr[-3000:], file=sys.stderr)
    print(f"\nSeed network 784-500-250-10, batch {BATCH_SIZE}, {args.threads or 'default'} "
          f"thread(s); {machine_line(machine)}\n")
    print(format_table(results))
    if args.json:
        from kerasdnn.core.io import atomic_write_json

        atomic_write_json(args.json, {"machine": machine, "results": results,
                                      "command": command_line("benchmarks.step_profile",
                                                              argv)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
