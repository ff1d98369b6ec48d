"""Predictions of a trained model: class probabilities from its logits, labels and
probabilities collected over a split, and the data a run was trained on.

``kerasdnn.train`` (the run's own report) and ``kerasdnn.evaluate`` (a report
rebuilt on any backend) both predict through here.

Example:
    >>> import numpy as np
    >>> logits_to_proba(np.array([[0.0, 0.0], [0.0, np.log(3.0)]]), binary=False).round(2)
    array([[0.5 , 0.5 ],
           [0.25, 0.75]])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from kerasdnn.core.config import TrainConfig
from kerasdnn.core.errors import ConfigError
from kerasdnn.training.distribute import pad_batch, replicas
from pipelines.sources import read_source

__all__ = [
    "REPORT_ROWS",
    "SampledRows",
    "collect",
    "collect_sample",
    "is_binary",
    "load_test_images",
    "logits_to_proba",
    "predict_proba",
    "report_rows",
    "sampled_from",
    "trained_data",
    "validation_predictions",
]

_UNBATCHED_BATCH_SIZE = 256
REPORT_ROWS = 1_000_000  # a streamed split's report: a uniform sample of this many rows


def predict_proba(model: Any, data: Any, *, batch_size: int | None = None) -> np.ndarray:
    """Class probabilities of ``model`` (which outputs logits) on ``data``.

    Args:
        model: a Keras model outputting logits, e.g. a ``kerasdnn.DNN``.  Its
            ``model_config.binary`` says whether the head is one sigmoid unit;
            without a ``model_config``, an output width of 1 means binary.
        data: an array of inputs, or a ``tf.data.Dataset`` of ``x`` or ``(x, y)``
            batches (labels are ignored).
        batch_size: for array inputs (Keras's default otherwise).

    Returns:
        ``(n, k)`` float64 probabilities; binary models give ``(n, 2)``.

    Example:
        >>> from kerasdnn.network.models import build_model
        >>> model = build_model(input_shape=(64,), hidden_units=(16,))
        >>> predict_proba(model, np.zeros((3, 64), "float32")).sum(axis=1).round(6).tolist()
        [1.0, 1.0, 1.0]
    """
    logits = model.predict(data, batch_size=batch_size, verbose=0)
    return logits_to_proba(logits, binary=is_binary(model))


def logits_to_proba(logits: Any, *, binary: bool) -> np.ndarray:
    """Probabilities from logits: softmax over ``(n, k)``, or for a one-unit binary
    head the sigmoid, returned as ``(n, 2)`` with columns ``[P(0), P(1)]``.

    Example:
        >>> logits_to_proba(np.array([[0.0]]), binary=True).tolist()
        [[0.5, 0.5]]
    """
    from scipy.special import expit, softmax

    values = np.asarray(logits, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if binary:
        if values.shape[-1] != 1:
            raise ConfigError(
                f"a binary model has one output unit, got logits of shape {values.shape}"
            )
        positive = expit(values[:, 0])
        return np.stack([1.0 - positive, positive], axis=1)
    return softmax(values, axis=1)


def is_binary(model: Any) -> bool:
    """True when ``model`` has a one-unit sigmoid head (``model_config.binary``,
    else an output width of 1).

    Example:
        >>> import types
        >>> is_binary(types.SimpleNamespace(output_shape=(None, 1)))
        True
    """
    config = getattr(model, "model_config", None)
    if config is not None and hasattr(config, "binary"):
        return bool(config.binary)
    return tuple(model.output_shape)[-1] == 1


def collect(model: Any, dataset: Iterable[Any], *, max_rows: int | None = None,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predicted probabilities over ``dataset``, in one pass.

    Each ``(x, y)`` batch is predicted as it is read, so labels and predictions
    stay aligned even for a dataset that reshuffles on every pass.  An
    unbatched ``tf.data.Dataset`` (``pipelines.load(batch_size=None)``) is
    batched by 256 first.

    With ``max_rows``, every row is predicted but at most ``max_rows`` are kept: all
    of them when there are no more, else a uniform random sample of ``max_rows``
    (seeded by ``seed``; the rows with the smallest of a random key each), in the
    dataset's order: what a report of a split larger than memory scores
    (:data:`REPORT_ROWS`), in memory of ``max_rows``, not of the split.

    Returns:
        ``(y_true, y_prob)``: int64 labels ``(n,)`` and float64 probabilities
        ``(n, k)`` as in :func:`predict_proba`.

    Example:
        >>> from kerasdnn.network.models import build_model
        >>> model = build_model(input_shape=(4,), hidden_units=(), num_classes=3)
        >>> y_true, y_prob = collect(model, [(np.ones((2, 4)), [2, 0]), (np.ones((1, 4)), [1])])
        >>> y_true.tolist(), y_prob.shape
        ([2, 0, 1], (3, 3))
        >>> batches = [(np.ones((100, 4)), np.arange(100) % 3)] * 5
        >>> y_true, y_prob = collect(model, batches, max_rows=50, seed=0)
        >>> y_prob.shape
        (50, 3)
    """
    y_true, y_prob, _ = collect_sample(model, dataset, max_rows=max_rows, seed=seed)
    return y_true, y_prob


def collect_sample(model: Any, dataset: Iterable[Any], *, max_rows: int | None,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`collect`, with the place in ``dataset`` of each row kept:
    ``(y_true, y_prob, rows)`` (``rows``: int64, increasing).

    Example:
        >>> from kerasdnn.network.models import build_model
        >>> model = build_model(input_shape=(4,), hidden_units=(), num_classes=3)
        >>> batches = [(np.ones((100, 4)), np.arange(100) % 3)] * 5
        >>> y_true, _, rows = collect_sample(model, batches, max_rows=50)
        >>> len(rows), bool(np.all(y_true == rows % 100 % 3))
        (50, True)
    """
    kept = _Sample(max_rows, seed)
    for batch in _numpy_batches(model, dataset):
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ConfigError("collect needs a dataset of (x, y) batches, with labels")
        x, y = batch[0], batch[1]
        kept.add(np.asarray(y).reshape(-1), _predicted(model, x))
    if not kept.rows:
        raise ConfigError("the dataset is empty: nothing to evaluate")
    rows, labels, logits = kept.result()
    return (labels.astype(np.int64), logits_to_proba(logits, binary=is_binary(model)),
            rows.astype(np.int64))


def report_rows(streamed: bool) -> int | None:
    """The rows a report scores at most: :data:`REPORT_ROWS` for a source read piece by
    piece (``--stream``), else all (``None``).

    Example:
        >>> report_rows(True), report_rows(False)
        (1000000, None)
    """
    return REPORT_ROWS if streamed else None


class SampledRows:
    """The rows ``rows`` of ``array`` (e.g. a memory map of a split's images), each read
    when it is indexed: what a report of a sample shows (its gallery) in the sample's
    order, without reading the sample's rows at once.

    Example:
        >>> view = SampledRows(np.arange(10) * 10, np.array([2, 5]))
        >>> view.shape, int(view[1])
        ((2,), 50)
    """

    def __init__(self, array: Any, rows: np.ndarray) -> None:
        self.array, self.rows = array, np.asarray(rows)
        self.shape = (len(self.rows), *np.shape(array)[1:])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.asarray(self.array[self.rows[index]])


def sampled_from(info: Any, y_true: np.ndarray) -> int | None:
    """The test split's rows when ``y_true`` holds fewer of them (a report's sample,
    :func:`report_rows`), else ``None``.

    Example:
        >>> import types
        >>> info = types.SimpleNamespace(num_examples={"test": 5})
        >>> sampled_from(info, np.zeros(3)), sampled_from(info, np.zeros(5))
        (5, None)
    """
    total = int(info.num_examples.get("test") or 0)
    return total if len(y_true) < total else None


class _Sample:
    """The rows of a pass, or a uniform random sample of ``max_rows`` of them: each row
    a random key, the ``max_rows`` smallest kept (a bottom-k sample; by hand: NumPy has
    no streaming sampler), in bounded memory (at most twice ``max_rows`` at a time)."""

    def __init__(self, max_rows: int | None, seed: int) -> None:
        self.max_rows, self.rows = max_rows, 0
        self.random = np.random.default_rng([seed, 0x5A3])
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.held = 0

    def add(self, labels: np.ndarray, logits: np.ndarray) -> None:
        keys = self.random.random(len(labels)) if self.max_rows is not None else None
        order = np.arange(self.rows, self.rows + len(labels))
        self.parts.append((order, keys, labels, logits))
        self.rows += len(labels)
        self.held += len(labels)
        if self.max_rows is not None and self.held > 2 * self.max_rows:
            self._shrink()

    def _shrink(self) -> None:
        order, keys, labels, logits = (np.concatenate(part) for part in zip(*self.parts,
                                                                           strict=True))
        if len(keys) > self.max_rows:
            smallest = np.sort(np.argpartition(keys, self.max_rows)[:self.max_rows])
            order, keys, labels, logits = (order[smallest], keys[smallest], labels[smallest],
                                           logits[smallest])
        self.parts, self.held = [(order, keys, labels, logits)], len(keys)

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, labels, logits)`` of the kept rows, ``rows`` their places."""
        if self.max_rows is not None:
            self._shrink()
        return tuple(np.concatenate([part[i] for part in self.parts])  # type: ignore[return-value]
                     for i in (0, 2, 3))


def validation_predictions(model: Any, splits: Any, max_rows: int | None = None
                           ) -> tuple[np.ndarray, np.ndarray] | None:
    """``(y_true, y_prob)`` of the validation split when the task is binary (its
    decision threshold is chosen there), else None (``max_rows``: :func:`collect`'s).

    Example:
        >>> import types
        >>> info = types.SimpleNamespace(num_classes=10, num_examples={"validation": 144})
        >>> validation_predictions(None, types.SimpleNamespace(info=info)) is None
        True
    """
    if splits.info.num_classes != 2 or not splits.info.num_examples.get("validation"):
        return None
    return collect(model, splits.validation, max_rows=max_rows)


def trained_data(record: Mapping[str, Any] | None) -> TrainConfig:
    """The data settings of a run's ``config.json`` record, as the run resolved them
    (dataset ``"auto"`` → the source it used, scale ``"auto"`` → the scaling it
    applied), so that :func:`kerasdnn.training.data.load_splits` gives the same splits;
    ``TrainConfig()``'s defaults without a record.

    Example:
        >>> record = {"train": {"dataset": "auto", "seed": 3},
        ...           "dataset": {"source": "digits", "scale": "standardize"}}
        >>> config = trained_data(record)
        >>> config.dataset, config.scale, config.seed
        ('digits', 'standardize', 3)
    """
    if not record:
        return TrainConfig()
    config = TrainConfig.from_dict(record["train"])
    used = record.get("dataset") or {}
    dataset = used.get("source") if config.dataset == "auto" else None
    return dataclasses.replace(config, dataset=dataset or config.dataset,
                               scale=used.get("scale") or config.scale)


def load_test_images(
    dataset: str, *, data_dir: Any = None, manual_dir: Any = None, stream: bool = False
) -> np.ndarray | None:
    """The test images of ``dataset`` as stored (unscaled, in the test split's order)
    for the gallery of mistakes; None when its examples are not images.  The
    source is read again: ``pipelines.load`` keeps only the scaled examples.  With
    ``stream`` (a run that streamed ``npz:``/``idx:``), the test images memory-mapped:
    the gallery reads only the few it shows, and the training arrays are not read.

    Example:
        >>> load_test_images("digits").shape
        (360, 8, 8)
    """
    from kerasdnn.evaluation.reports.gallery import is_image_batch
    from pipelines.tables import is_table

    if is_table(dataset) or dataset == "dataframe":  # rows of a table are no images
        return None
    if stream:
        from pipelines.array_files import stored_arrays

        images = stored_arrays(dataset).x_test.memmap()
        return images if is_image_batch(images) else None
    images = read_source(dataset, data_dir=data_dir, manual_dir=manual_dir).x_test
    return images if is_image_batch(images) else None


def _numpy_batches(model: Any, dataset: Iterable[Any]) -> Iterable[Any]:
    """``dataset`` itself, or a ``tf.data.Dataset`` as NumPy batches (one of single
    examples batched by 256 first)."""
    spec = getattr(dataset, "element_spec", None)
    if spec is None:
        return dataset
    x_spec = spec[0] if isinstance(spec, (tuple, list)) else spec
    input_rank = len(tuple(model.input_shape)) - 1
    if x_spec.shape.rank == input_rank:  # one example per element: batch them
        dataset = dataset.batch(_UNBATCHED_BATCH_SIZE)
    return dataset.as_numpy_iterator()


def _predicted(model: Any, x: np.ndarray) -> np.ndarray:
    """``model.predict_on_batch(x)``; under a JAX data-parallel distribution, whose
    batches must divide evenly across the devices, ``x`` padded and the padding's
    rows dropped again."""
    devices, rows = replicas(), len(x)
    if devices > 1 and rows % devices:
        x = pad_batch(np.asarray(x), np.zeros(rows), devices)[0]
    return np.asarray(model.predict_on_batch(x))[:rows]
