"""``DNNClassifier``: a kerasdnn network as a scikit-learn classifier.

It fits a :func:`~kerasdnn.network.models.build_model` network with the custom step of
the active backend, so it goes into ``Pipeline``, ``GridSearchCV`` and
``cross_val_score`` like any scikit-learn classifier.  It passes scikit-learn's
``check_estimator`` with the expected failures listed in
:data:`EXPECTED_FAILED_CHECKS` (each with its reason).

Same ``random_state``, same data → the same predictions, on every backend: the
initial weights and dropout come from the model seed, and epoch ``e``'s order
from ``(seed, e)`` alone (no global random state is read or changed).  Across
backends the numbers agree to float32 rounding, dropout aside (Keras draws its
masks from each backend's own generator).

Example:
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = DNNClassifier(hidden_units=(8,), batch_size=16, random_state=0)
    >>> make_pipeline(StandardScaler(), clf).fit(X, y).score(X, y) > 0.9
    True
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from kerasdnn.core.config import ModelConfig, TrainConfig
from kerasdnn.evaluation.predict import logits_to_proba
from pipelines.builder import make_stream
from pipelines.splitting import split_indices
from pipelines.stream import EpochStream

__all__ = ["EXPECTED_FAILED_CHECKS", "DNNClassifier"]

# scikit-learn check name → why DNNClassifier fails it (for check_estimator /
# parametrize_with_checks(expected_failed_checks=...)).
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_sample_weight_equivalence_on_dense_data": (
        "minibatch gradient descent: a sample of weight 2 weighs twice in its own batch, "
        "while its repeated copy lands in another batch and changes the batches and the "
        "number of steps, so the trained weights differ (as for any SGD-trained model)"
    ),
}

_PREDICT_BATCH_SIZE = 1024


class DNNClassifier(ClassifierMixin, BaseEstimator):
    """A dense neural-network classifier (kerasdnn's ``DNN``) with scikit-learn's API.

    ``keras.wrappers.SKLearnClassifier`` is not the base: it takes a model-building
    callable and clones only its own three parameters, while the parameters here
    are the network's settings themselves (those of ``ModelConfig``/``TrainConfig``).

    Args:
        hidden_units: units of each hidden ``Dense`` layer (``()``: logistic regression).
        activation: hidden activation (see ``kerasdnn.core.config.ACTIVATIONS``).
        dropout: dropout rate after each hidden layer, in [0, 1).
        batch_norm: batch normalization after each hidden layer.
        l2: L2 penalty on the kernels.
        optimizer: ``"adam"``, ``"sgd"`` or ``"adamw"``.
        learning_rate: the optimizer's learning rate.
        momentum: SGD momentum.
        clipnorm: global-norm gradient clipping (``None``: off).
        jit_compile: compile the step with XLA (``"auto"``: where the backend
            supports it; JAX always compiles).
        epochs: passes over the training data.
        batch_size: examples per step, at most the number of examples (200: as
            scikit-learn's ``MLPClassifier``, few steps per epoch on small tables).
        validation_split: fraction held out (stratified, seeded) for the
            validation metrics and early stopping; 0 trains on everything.
        early_stopping: patience in epochs on the validation loss (on the
            training loss without a validation split); the best weights are kept.
        random_state: ``int`` (reproducible fits), ``RandomState`` or ``None``
            (a seed drawn from NumPy's global generator at each fit).
        verbose: Keras's ``fit`` verbosity.
        lr_schedule: ``"constant"``, ``"cosine"``, ``"step"`` or ``"plateau"``
            (:mod:`kerasdnn.training.schedules`).
        warmup_epochs: epochs of linear learning-rate warm-up.
        class_weight: ``None``, ``"balanced"`` or ``{class label: weight}``, as
            scikit-learn's ``compute_class_weight`` reads it; multiplies the sample weights.
        warm_start: ``fit`` continues training the fitted network (weights, optimizer
            state, its schedule and its epoch order) for ``epochs`` more epochs, as
            scikit-learn's ``warm_start`` (the same classes and features required);
            ``False``: every ``fit`` starts afresh.

    Attributes:
        classes_: the class labels, sorted.
        n_features_in_: number of features seen in ``fit``.
        feature_names_in_: column names, when ``X`` was a DataFrame with string names.
        model_: the fitted ``kerasdnn.DNN`` (outputs logits).
        history_: ``{metric: [value per epoch]}`` from Keras's ``fit``.

    It is cross-validated like any classifier, e.g.
    ``cross_val_score(DNNClassifier(hidden_units=(32,)), X / 16, y, cv=3)`` on
    scikit-learn's digits (the module's example fits a smaller case).
    """

    def __init__(
        self,
        hidden_units: Sequence[int] = (100,),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        l2: float = 0.0,
        optimizer: str = "adam",
        learning_rate: float = 0.01,
        momentum: float = 0.9,
        clipnorm: float | None = None,
        jit_compile: bool | str = "auto",
        epochs: int = 10,
        batch_size: int = 200,
        validation_split: float = 0.0,
        early_stopping: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int | str = 0,
        lr_schedule: str = "constant",
        warmup_epochs: int = 0,
        class_weight: str | dict[Any, float] | None = None,
        warm_start: bool = False,
    ) -> None:
        self.hidden_units = hidden_units
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.l2 = l2
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.clipnorm = clipnorm
        self.jit_compile = jit_compile
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_split = validation_split
        self.early_stopping = early_stopping
        self.random_state = random_state
        self.verbose = verbose
        self.lr_schedule = lr_schedule
        self.warmup_epochs = warmup_epochs
        self.class_weight = class_weight
        self.warm_start = warm_start

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> DNNClassifier:
        """Train a new network on ``X``, ``y`` (any label type; 2 classes → one sigmoid unit).

        Samples of weight 0 are left out; the others weigh in the loss.

        Raises:
            ValueError: invalid data or settings, or fewer than two classes.

        Example:
            >>> clf = DNNClassifier(random_state=0).fit([[0.0], [1.0]], ["no", "yes"])
            >>> clf.classes_.tolist()
            ['no', 'yes']
        """
        warm = bool(self.warm_start) and hasattr(self, "model_")
        previous = self.classes_ if warm else None
        preprocessing = self.preprocessing_ if warm else _table_state(X)
        if preprocessing is not None:  # a DataFrame with text or missing values
            X = _encoded(X, preprocessing)
        self.preprocessing_ = preprocessing
        X, y = validate_data(self, X, y, dtype=np.float32, reset=not warm)
        check_classification_targets(y)
        self.classes_, y_encoded = np.unique(y, return_inverse=True)
        if warm and not np.array_equal(previous, self.classes_):
            self.classes_ = previous
            raise ValueError("warm_start needs y with the same classes as the previous fit "
                             f"({previous.tolist()}); set warm_start=False to start afresh")
        weights = _check_sample_weight(sample_weight, X, dtype=np.float32,
                                       ensure_non_negative=True)
        if self.class_weight is not None:  # as scikit-learn's estimators weigh classes
            from sklearn.utils.class_weight import compute_class_weight

            per_class = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
            weights = weights * per_class[y_encoded].astype(np.float32)
        if not np.any(weights > 0):
            raise ValueError("sample_weight is zero for every sample: nothing to learn from")
        # A zero weight means "not there": leave the sample out of every batch.
        present = weights > 0
        X, y_encoded, weights = X[present], y_encoded[present], weights[present]
        if len(self.classes_) < 2 or len(np.unique(y_encoded)) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes (of non-zero "
                f"weight); got 1 class: {self.classes_[y_encoded[0]]!r}"
            )
        seed = self.seed_ if warm else _seed(self.random_state)
        model_config, early_stopping = self._configs(X.shape[1], len(self.classes_), seed)
        train, validation = _split(X, y_encoded, weights, self.validation_split, seed)
        batch_size = min(int(self.batch_size), len(train[0]))
        steps = math.ceil(len(train[1]) / batch_size)

        from kerasdnn.network.models import build_model
        from kerasdnn.training import fitting
        from kerasdnn.training.schedules import attach_schedule, schedule_callbacks

        done = len(self.history_.get("loss", [])) if warm else 0
        if warm:  # scikit-learn's warm_start: the fitted network trains on
            model = self.model_
        else:
            model = build_model(model_config)
            attach_schedule(model, int(self.epochs), steps)
        monitor = "val_loss" if validation is not None else "loss"
        history = fitting.fit_stream(
            model, _epoch_stream(*train, batch_size=batch_size, seed=seed),
            initial_epoch=done,
            epochs=done + int(self.epochs),
            validation_data=None if validation is None else _batches(*validation,
                                                                     batch_size=batch_size),
            callbacks=[fitting.early_stopping(early_stopping, validation is not None),
                       *schedule_callbacks(model_config, monitor)],
            verbose=self.verbose,
        )
        self.model_ = model
        self.seed_ = seed
        earlier = self.history_ if warm else {}
        self.history_ = {name: [*earlier.get(name, []), *(float(v) for v in values)]
                         for name, values in history.history.items()}
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)``, float64, columns in ``classes_`` order.

        Example:
            >>> clf = DNNClassifier(random_state=0).fit([[0.0], [1.0]], [0, 1])
            >>> clf.predict_proba([[0.5]]).shape
            (1, 2)
        """
        check_is_fitted(self)
        if getattr(self, "preprocessing_", None) is not None:
            X = _encoded(X, self.preprocessing_)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        logits = self.model_.predict(X, batch_size=_PREDICT_BATCH_SIZE, verbose=0)
        return logits_to_proba(logits, binary=len(self.classes_) == 2)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample (a label from ``classes_``)."""
        proba = self.predict_proba(X)  # first: it checks that the estimator is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False  # the same random_state gives the same model
        return tags

    # Pickling: the Keras model travels as the bytes of its .keras file.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: object's is the live __dict__
        if "model_" in state:
            state["model_"] = _keras_bytes(state["model_"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state.get("model_"), bytes):
            state = {**state, "model_": _keras_model(state["model_"])}
        super().__setstate__(state)

    def _configs(self, num_features: int, num_classes: int, seed: int) -> tuple[Any, int | None]:
        """The ``ModelConfig`` and the early-stopping patience, validated by
        :mod:`kerasdnn.core.config`."""
        model_config = ModelConfig(
            input_shape=(num_features,),
            num_classes=num_classes,
            hidden_units=tuple(self.hidden_units),
            activation=self.activation,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            l2=self.l2,
            optimizer=self.optimizer,
            learning_rate=self.learning_rate,
            momentum=self.momentum,
            clipnorm=self.clipnorm,
            jit_compile=self.jit_compile,
            seed=seed,
            steps_per_execution=1,
            lr_schedule=self.lr_schedule,
            warmup_epochs=self.warmup_epochs,
        )
        if self.validation_split != 0.0:  # 0 means "none", which TrainConfig does not allow
            TrainConfig(validation_split=self.validation_split)
        train_config = TrainConfig(epochs=self.epochs, batch_size=self.batch_size,
                                   early_stopping=self.early_stopping)
        return model_config, train_config.early_stopping


def _table_state(X: Any) -> dict[str, Any] | None:
    """The table cleaning fitted on ``X`` when it is a DataFrame with text or missing
    values (:mod:`pipelines.tables.frame`), else None."""
    from pipelines.tables.frame import fit_frame

    return fit_frame(X)


def _encoded(X: Any, state: dict[str, Any]) -> np.ndarray:
    from pipelines.tables.frame import encode_frame

    return encode_frame(X, state)


def _seed(random_state: Any) -> int:
    """A model seed from ``random_state`` (an int is used as is)."""
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool) \
            and random_state >= 0:
        return int(random_state)
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def _split(X: np.ndarray, y: np.ndarray, w: np.ndarray, fraction: float, seed: int) -> tuple:
    """``((X, y, w) to train on, (X, y, w) held out or None)``, stratified and seeded."""
    if not fraction:
        return (X, y, w), None
    keep, held_out = split_indices(y, float(fraction), seed=seed, what="validation")
    return (X[keep], y[keep], w[keep]), (X[held_out], y[held_out], w[held_out])


def _batches(X: np.ndarray, y: np.ndarray, w: np.ndarray, *, batch_size: int) -> Any:
    from pipelines.tf_setup import tf

    return tf.data.Dataset.from_tensor_slices((X, y.astype(np.int32), w)).batch(batch_size)


def _epoch_stream(X: np.ndarray, y: np.ndarray, w: np.ndarray, *,
                  batch_size: int, seed: int) -> EpochStream:
    """The endless training stream of ``pipelines.load(repeat=True)`` (epoch ``e``
    shuffled by ``(seed, e)`` alone, so every backend sees the same batches, however
    many iterators its ``fit`` makes) over ``(X, y, w)``.

    :func:`pipelines.builder.make_stream` carries no sample weights: it streams
    ``X`` (unscaled) with each row's number as its label, and each batch of
    numbers gathers its labels and weights.
    """
    from pipelines.tf_setup import tf

    numbers = make_stream(X, np.arange(len(y)), offset=np.zeros((), np.float32),
                          multiplier=np.ones((), np.float32), flatten=False,
                          batch_size=batch_size, shuffle_seed=seed)
    with tf.device("/cpu:0"):
        labels, weights = tf.constant(y.astype(np.int32)), tf.constant(w)

    def with_labels_and_weights(x: tf.Tensor, chosen: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return x, tf.gather(labels, chosen), tf.gather(weights, chosen)

    def blocks(first_epoch: int, batches_per_block: int) -> tf.data.Dataset:
        return numbers.blocks(first_epoch, batches_per_block).map(
            with_labels_and_weights).prefetch(tf.data.AUTOTUNE)

    return EpochStream(numbers.batch_size, numbers.batches_per_epoch, blocks)


def _keras_bytes(model: Any) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "pickled.keras")  # a scratch file, not a run directory
        model.save(path)
        with open(path, "rb") as handle:
            return handle.read()


def _keras_model(data: bytes) -> Any:
    import keras

    import kerasdnn.network.models  # noqa: F401  registers kerasdnn>DNN for deserialization

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "pickled.keras")  # a scratch file, not a run directory
        with open(path, "wb") as handle:
            handle.write(data)
        return keras.saving.load_model(path)
