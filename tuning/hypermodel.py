"""The KerasTuner hypermodel of kerasdnn: :class:`DNNHyperModel`, and its tuners.

``build(hp)`` maps the hyperparameters of :data:`tuning.space.DEFAULT_SPACE`
(or a narrowed space) onto a :class:`~kerasdnn.core.config.ModelConfig` and calls
:func:`kerasdnn.network.models.build_model`: the exact model of ``kerasdnn.train``.
``fit(hp, model, train_config, **kwargs)`` trains it on the data path of
``kerasdnn.train`` (:func:`kerasdnn.training.data.load_splits`, the endless epoch stream,
and its fit loop :func:`kerasdnn.training.fitting.fit_stream`) with the trial's batch size, for
``epochs`` from ``initial_epoch`` (what Hyperband passes), and returns the
``History``, whose logs also hold ``steps_per_epoch`` (the batches actually
seen per epoch).  A trial whose loss goes non-finite, or whose training steps
are mostly skipped by the non-finite guard, raises
``keras_tuner.errors.FailedTrialError``.

Example:
    >>> from kerasdnn.core.config import TrainConfig
    >>> hypermodel = DNNHyperModel(ModelConfig(input_shape=(64,)), DEFAULT_SPACE.narrow(
    ...     {"num_layers": 1, "units": 8, "optimizer": "adam", "batch_size": 256}))
    >>> hp = keras_tuner.HyperParameters()
    >>> history = hypermodel.fit(hp, hypermodel.build(hp), TrainConfig(dataset="digits",
    ...                          epochs=1), verbose=0)
    >>> history.history["steps_per_epoch"]
    [6.0]
"""

from __future__ import annotations

import copy
import functools
import math
import time
import warnings
from typing import TYPE_CHECKING, Any

import keras
import keras_tuner

from kerasdnn.core.config import ModelConfig, TrainConfig
from kerasdnn.core.errors import ConfigError
from kerasdnn.core.io import atomic_write_json
from kerasdnn.training.data import load_splits
from kerasdnn.training.faults import fault_point
from kerasdnn.training.fitting import fit_stream
from tuning.chief import write_tuner_state_atomically
from tuning.options import TUNERS, objective_direction
from tuning.pruning import EPOCH, Pruner, epoch_values
from tuning.space import DEFAULT_SPACE, Space

if TYPE_CHECKING:  # pragma: no cover
    from pipelines.info import Splits

__all__ = ["TUNERS", "BayesianOptimization", "DNNHyperModel", "Hyperband", "RandomSearch",
           "StepCounter", "make_tuner", "trial_splits"]

STEPS_PER_EPOCH = "steps_per_epoch"


class StepCounter(keras.callbacks.Callback):
    """Counts the training batches of each epoch and the steps the guard skipped.

    Example:
        >>> counter = StepCounter()
        >>> counter.steps
        []
    """

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[int] = []
        self.skipped: list[int] = []
        self._updates_at_start = 0
        self._skipped_at_start = 0

    # Counted from the optimizer's update count and the guard's skip count, not from
    # on_train_batch_end: with steps_per_execution > 1 Keras calls that once per
    # execution, and an epoch's last execution may run fewer steps.
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._updates_at_start = _updates(self.model)
        self._skipped_at_start = _skipped(self.model)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        skipped = _skipped(self.model) - self._skipped_at_start
        self.steps.append(_updates(self.model) - self._updates_at_start + skipped)
        self.skipped.append(skipped)
        if _diverged(logs or {}, self.steps[-1], skipped):
            self.model.stop_training = True


class DNNHyperModel(keras_tuner.HyperModel):
    """Builds ``kerasdnn`` models from hyperparameters and fits them as ``kerasdnn.train`` does.

    Args:
        base_config: the fixed part of every model (``input_shape``,
            ``num_classes``, ``seed``, ``metrics``, …); the tuned fields replace
            its own.
        space: the search space (:data:`tuning.space.DEFAULT_SPACE` by default).

    Attributes:
        steps_per_epoch: batches per epoch of the last :meth:`fit`.
        execution: added to the seed of the weights, so that repeated
            executions of one trial start from different initializations.

    Example:
        >>> hypermodel = DNNHyperModel(ModelConfig(input_shape=(64,)))
        >>> hp = keras_tuner.HyperParameters()
        >>> hypermodel.build(hp).model_config.hidden_units
        (500, 250)
    """

    def __init__(self, base_config: ModelConfig | None = None, space: Space = DEFAULT_SPACE,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_config = base_config or ModelConfig()
        self.space = space
        self.steps_per_epoch: list[int] = []
        self.execution = 0

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        self.space.declare(hp)

    def model_config(self, hp: keras_tuner.HyperParameters) -> ModelConfig:
        """The :class:`ModelConfig` a trial's hyperparameters stand for."""
        values = self.space.declare(hp)
        config = self.space.model_config(values, self.base_config)
        return config.replace(seed=self.base_config.seed + self.execution)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        from kerasdnn.network.models import build_model

        return build_model(self.model_config(hp))

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model,
            train_config: TrainConfig, *, callbacks: list | None = None,
            **kwargs: Any) -> keras.callbacks.History:
        """Train ``model`` on the data of ``train_config`` with the trial's batch size.

        The data are what ``python -m kerasdnn.train`` with those settings and that
        batch size trains and validates on, batch for batch: the endless training
        stream (epoch ``e`` shuffled by the seed and ``e`` alone, so a trial trains
        the same whatever this process ran before), fitted by ``kerasdnn.train``'s loop
        (:func:`kerasdnn.training.fitting.fit_stream`), ``stream.batches_per_epoch`` steps per
        epoch.

        Args:
            hp: the trial's hyperparameters (``batch_size`` among them).
            model: the model :meth:`build` returned.
            train_config: the search's run settings (dataset, seed, ``epochs``, …);
                the trial's ``batch_size`` replaces its own.
            callbacks: Keras callbacks (KerasTuner adds its own).
            **kwargs: passed on to ``model.fit``: ``epochs`` (default:
                ``train_config.epochs``), ``initial_epoch`` (Hyperband; the stream
                then starts at that epoch's order), ``verbose``, …

        Raises:
            keras_tuner.errors.FatalValueError: ``train_config`` is not a TrainConfig.
            keras_tuner.errors.FailedTrialError: the training diverged.
        """
        if not isinstance(train_config, TrainConfig):
            raise keras_tuner.errors.FatalValueError(
                "DNNHyperModel.fit trains on the data a kerasdnn TrainConfig names: "
                f"tuner.search(TrainConfig(dataset=...)); got {type(train_config).__name__}"
            )
        from kerasdnn.training.class_weights import weighted_stream
        from kerasdnn.training.schedules import attach_schedule, schedule_callbacks

        kwargs.pop("batch_size", None)  # the hp decides
        values = self.space.declare(hp)
        batch_size = int(values["batch_size"])
        splits = trial_splits(train_config.replace(batch_size=batch_size))
        epochs = kwargs.pop("epochs", train_config.epochs)
        # the trial's schedule, warm-up and class weights
        try:
            attach_schedule(model, epochs, splits.stream.batches_per_epoch)
        except ConfigError as error:  # e.g. a warm-up as long as a short Hyperband trial
            raise keras_tuner.errors.FailedTrialError(str(error)) from None
        weighting = values.get("class_weight", "none")
        stream = weighted_stream(splits.stream, splits, train_config.replace(
            class_weight=None if weighting == "none" else weighting))
        counter = StepCounter()
        history = fit_stream(
            model, stream,
            epochs=epochs,
            initial_epoch=kwargs.pop("initial_epoch", 0),
            validation_data=splits.validation,
            callbacks=[*(callbacks or []), *schedule_callbacks(model.model_config, "val_loss"),
                       counter],
            **kwargs,
        )
        self.steps_per_epoch = counter.steps
        if history.history:
            history.history[STEPS_PER_EPOCH] = [float(steps) for steps in counter.steps]
        reason = _divergence(history.history, counter)
        if reason:
            raise keras_tuner.errors.FailedTrialError(f"the training diverged: {reason}")
        return history


# A few batch sizes' data kept: a trial of another one loads (and reads the source) again.
@functools.lru_cache(maxsize=4)
def trial_splits(train_config: TrainConfig) -> Splits:
    """The data of ``kerasdnn.train`` for ``train_config``, its training split an endless
    stream (:func:`kerasdnn.training.data.load_splits` with ``repeat=True``), kept for reuse:
    the stream holds no state (each ``for_fit`` starts it afresh at an epoch).

    Example:
        >>> trial_splits(TrainConfig(dataset="digits")).stream.batches_per_epoch
        13
    """
    return load_splits(train_config, repeat=True)


def _updates(model: keras.Model) -> int:
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _skipped(model: keras.Model) -> int:
    counter = getattr(model, "skipped_steps", None)
    return int(keras.ops.convert_to_numpy(counter)) if counter is not None else 0


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _diverged(logs: dict[str, Any], steps: int, skipped: int) -> str:
    for name in ("loss", "val_loss"):
        if name in logs and not math.isfinite(float(logs[name])):
            return f"{name} is {float(logs[name])}"
    if steps and skipped * 2 > steps:
        return f"{skipped} of {steps} steps had a non-finite loss or gradient"
    return ""


def _divergence(history: dict[str, list[float]], counter: StepCounter) -> str:
    for epoch, (steps, skipped) in enumerate(zip(counter.steps, counter.skipped, strict=True)):
        logs = {name: values[epoch] for name, values in history.items() if epoch < len(values)}
        reason = _diverged(logs, steps, skipped)
        if reason:
            return f"{reason} in epoch {epoch + 1}"
    return ""


# --------------------------------------------------------------------------- tuners

TRIAL_SECONDS = "seconds"
_STATUS = keras_tuner.engine.trial.TrialStatus


class _TrialRecording:
    """Tuner mixin: seconds per trial, a seed per execution, a hook per finished trial;
    a reloaded search runs again only the trials a kill interrupted, not ended ones.

    ``on_trial_done(trial)`` (when set) receives the oracle's record of each
    trial this tuner ran, once it has ended.
    """

    on_trial_done: Any = None
    pruning = False  # report the objective after every epoch (--prune); the oracle decides
    board_dir: Any = None  # --tensorboard: each trial's run in this folder (tuning.dashboard)

    def reload(self) -> None:
        # KerasTuner saves a trial's end in trial.json before oracle.json, which still
        # names it running until the tuner saves again: a kill in between would run an
        # ended trial again. Each trial.json says how its trial ended.
        super().reload()
        oracle = self.oracle
        if not hasattr(oracle, "_retry_queue"):  # a worker's oracle is the chief's, remote
            return
        ended = (_STATUS.COMPLETED, _STATUS.FAILED, _STATUS.STOPPED)  # STOPPED: pruned
        for trial_id in [t for t in oracle._retry_queue if oracle.trials[t].status in ended]:
            oracle._retry_queue.remove(trial_id)
            if trial_id not in oracle.end_order:
                oracle.end_order.append(trial_id)

    def on_trial_begin(self, trial: Any) -> None:
        super().on_trial_begin(trial)
        self._trial_start = time.perf_counter()
        self._executions = 0

    def _build_and_fit_model(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        self.hypermodel.execution = self._executions
        self._executions += 1
        if self.board_dir is not None:
            from tuning.dashboard import TrialBoard

            run = trial.trial_id if self._executions == 1 else \
                f"{trial.trial_id}_execution{self._executions}"
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), TrialBoard(
                self.board_dir, run, trial.hyperparameters.values)]
        return super()._build_and_fit_model(trial, *args, **kwargs)

    def on_epoch_end(self, trial: Any, model: Any, epoch: int, logs: dict | None = None) -> None:
        """With pruning: report this epoch's metrics to the oracle (the chief's, over
        KerasTuner's gRPC, in a distributed search); stop the training when it answers
        ``STOPPED`` (:mod:`tuning.pruning`)."""
        super().on_epoch_end(trial, model, epoch, logs=logs)
        if not self.pruning:
            return
        metrics = {name: float(value) for name, value in (logs or {}).items()
                   if _is_number(value)}
        metrics[EPOCH] = epoch + 1
        reply = self.oracle.update_trial(trial.trial_id, metrics, step=epoch)
        if reply.status == _STATUS.STOPPED:
            model.stop_training = True

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        results = super().run_trial(trial, *args, **kwargs)
        seconds = time.perf_counter() - self._trial_start
        for result in results if isinstance(results, list) else [results]:
            if isinstance(result, keras.callbacks.History) and result.history:
                epochs = len(next(iter(result.history.values())))
                result.history[TRIAL_SECONDS] = [seconds] * epochs
                if self.pruning:  # the epochs are reported: add what fit's end knows
                    objective = self.oracle.objective.name
                    self.oracle.update_trial(trial.trial_id, {
                        name: float(values[-1]) for name, values in result.history.items()
                        if name in (objective, TRIAL_SECONDS, STEPS_PER_EPOCH)
                    }, step=epochs - 1)
        return results

    def _run_and_update_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        # With pruning, the oracle holds every epoch's objective already; KerasTuner then
        # scores the trial from them (the same best value) and warns that this is deprecated.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The use case of calling", DeprecationWarning)
            return super()._run_and_update_trial(trial, *args, **kwargs)

    def on_trial_end(self, trial: Any) -> None:
        fault_point("trial_end")
        if trial.status != _STATUS.COMPLETED:
            # A failed trial reports no metrics; record its time. Any report to the
            # oracle must hold the objective: the worst value (failed trials are not scored).
            seconds = time.perf_counter() - self._trial_start
            worst = -math.inf if self.oracle.objective.direction == "max" else math.inf
            self.oracle.update_trial(
                trial.trial_id, {self.oracle.objective.name: worst, TRIAL_SECONDS: seconds}
            )
        super().on_trial_end(trial)
        if self.on_trial_done is not None:
            self.on_trial_done(self.oracle.get_trial(trial.trial_id), trial.message)


class _DefaultsFirst:
    """Oracle mixin: the first trial of a search runs the space's defaults — the seed
    network as ``kerasdnn.train`` trains it — so the best trial is never worse (on the
    objective) than the default run; later trials are the oracle's own choices."""

    def _save_trial(self, trial: Any) -> None:
        super()._save_trial(trial)
        fault_point("trial_saved")

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        if not self.trials:
            values = self.hyperparameters.values  # every hyperparameter at its default
            self._tried_so_far.add(self._compute_values_hash(values))
            return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING, "values": values}
        return super().populate_space(trial_id)


class _Pruning:
    """Oracle mixin: applies :attr:`pruner` to each per-epoch report of a trial (its
    objective, and ``epoch``), from the reports of every other trial at that epoch,
    and answers ``STOPPED`` to stop it; the trial then ends as ``STOPPED`` (pruned:
    never scored, never retried).  Each decision is appended to :attr:`decisions`
    (and written to :attr:`decisions_path` when set)."""

    pruner: Pruner | None = None
    decisions_path: Any = None

    @keras_tuner.synchronized
    def update_trial(self, trial_id: str, metrics: dict, step: int = 0) -> Any:
        trial = super().update_trial(trial_id, metrics, step=step)
        if self.pruner is None or EPOCH not in metrics or trial.status != _STATUS.RUNNING:
            return trial
        epoch, name = int(metrics[EPOCH]), self.objective.name
        value = float(metrics[name])
        others = epoch_values(self.trials, name, epoch, skip=trial_id)
        stop = self.pruner.decide(epoch, value, list(others.values()))
        self.decisions.append({"trial_id": trial_id, "epoch": epoch, "value": value,
                               "others": others, "pruned": stop})
        if self.decisions_path is not None:
            atomic_write_json(self.decisions_path, self.decisions)
        if not stop:
            return trial
        self.pruned[trial_id] = epoch
        reply = copy.copy(trial)
        reply.status = _STATUS.STOPPED
        return reply

    @keras_tuner.synchronized
    def end_trial(self, trial: Any) -> None:
        if trial.trial_id in self.pruned and trial.status == _STATUS.COMPLETED:
            trial.status = _STATUS.STOPPED
        super().end_trial(trial)

    @property
    def pruned(self) -> dict[str, int]:
        """Trial id -> the epoch it was stopped at, for this process's decisions."""
        if "_pruned" not in self.__dict__:
            self._pruned: dict[str, int] = {}
        return self._pruned

    @property
    def decisions(self) -> list[dict]:
        if "_decisions" not in self.__dict__:
            self._decisions: list[dict] = []
        return self._decisions


class _RandomSearchOracle(_Pruning, _DefaultsFirst, keras_tuner.oracles.RandomSearchOracle):
    pass


class _BayesianOptimizationOracle(
    _Pruning, _DefaultsFirst, keras_tuner.oracles.BayesianOptimizationOracle
):
    pass


class RandomSearch(_TrialRecording, keras_tuner.Tuner):
    """Random search (KerasTuner's oracle) that starts with the default configuration,
    records seconds and reports each trial."""

    def __init__(self, hypermodel: Any, *, objective: Any, max_trials: int, seed: int,
                 **kwargs: Any) -> None:
        oracle = _RandomSearchOracle(objective=objective, max_trials=max_trials, seed=seed)
        super().__init__(oracle, hypermodel, **kwargs)


class BayesianOptimization(_TrialRecording, keras_tuner.Tuner):
    """Bayesian optimization (KerasTuner's oracle) that starts with the default
    configuration, records seconds and reports each trial."""

    def __init__(self, hypermodel: Any, *, objective: Any, max_trials: int, seed: int,
                 **kwargs: Any) -> None:
        oracle = _BayesianOptimizationOracle(
            objective=objective, max_trials=max_trials, seed=seed
        )
        super().__init__(oracle, hypermodel, **kwargs)


class Hyperband(_TrialRecording, keras_tuner.Hyperband):
    """``keras_tuner.Hyperband`` that records seconds and reports each trial."""


def make_tuner(
    kind: str,
    hypermodel: DNNHyperModel,
    *,
    objective: str,
    seed: int,
    directory: str,
    project_name: str,
    overwrite: bool = False,
    max_trials: int | None = None,
    max_epochs: int | None = None,
    factor: int = 3,
    executions_per_trial: int = 1,
    tuner_id: str | None = None,
    pruner: Pruner | None = None,
    board_dir: str | None = None,
) -> Any:
    """A KerasTuner tuner of ``kind`` (``random``, ``bayesian``, ``hyperband``) for ``hypermodel``.

    The objective's direction is :func:`tuning.options.objective_direction`'s;
    ``pruner`` (random and bayesian) stops hopeless trials (:mod:`tuning.pruning`);
    ``board_dir`` gets each trial's TensorBoard run (:mod:`tuning.dashboard`).

    Example:
        >>> import tempfile
        >>> tuner = make_tuner("random", DNNHyperModel(ModelConfig(input_shape=(64,))),
        ...                    objective="val_loss", seed=1, max_trials=2,
        ...                    directory=tempfile.mkdtemp(), project_name="demo")
        >>> tuner.oracle.objective.direction
        'min'
    """
    write_tuner_state_atomically()
    common: dict[str, Any] = {
        "objective": keras_tuner.Objective(objective, objective_direction(objective)),
        "seed": seed,
        "directory": directory,
        "project_name": project_name,
        "overwrite": overwrite,
        "executions_per_trial": executions_per_trial,
    }
    if tuner_id is not None:
        common["tuner_id"] = tuner_id
    if kind in ("random", "bayesian"):
        tuner_class = RandomSearch if kind == "random" else BayesianOptimization
        tuner = tuner_class(hypermodel, max_trials=max_trials, **common)
        if pruner is not None:
            tuner.pruning = True
            tuner.oracle.pruner = pruner  # a worker's is the chief's, remote: unused
    elif pruner is not None:
        raise ValueError("pruning applies to the random and bayesian tuners only")
    elif kind == "hyperband":
        tuner = Hyperband(hypermodel, max_epochs=max_epochs, factor=factor, **common)
    else:
        raise ValueError(f"unknown tuner {kind!r}; use one of {', '.join(TUNERS)}")
    tuner.board_dir = board_dir
    return tuner
