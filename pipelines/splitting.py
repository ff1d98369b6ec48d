"""Seeded, stratified hold-out splits (validation from train, test where a source has none).

Example:
    >>> import numpy as np
    >>> y = np.repeat([0, 1], 10)
    >>> keep, held_out = split_indices(y, 0.2, seed=0, what="validation")
    >>> len(keep), len(held_out), int(y[held_out].sum())
    (16, 4, 2)
"""

from __future__ import annotations

import numpy as np

from pipelines.errors import InvalidDataError

__all__ = ["split_indices"]


def split_indices(
    y: np.ndarray, fraction: float, *, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, held_out)`` with ``held_out`` about ``fraction`` of ``y``.

    Stratified by ``y`` (class proportions kept in both parts) when every class
    can be, plain random otherwise; both index arrays are sorted, so each part
    keeps the source order.  Raises :class:`InvalidDataError` when a part would be
    empty.

    Example:
        >>> split_indices(np.array([0, 1, 0, 1]), 0.5, seed=1, what="test")[1].size
        2
    """
    from sklearn.model_selection import train_test_split  # lazily: `--list` stays fast

    indices = np.arange(len(y))
    try:
        keep, held_out = train_test_split(
            indices, test_size=fraction, random_state=seed, shuffle=True, stratify=y
        )
    except ValueError:  # a class too small to stratify, or fewer held-out than classes
        try:
            keep, held_out = train_test_split(
                indices, test_size=fraction, random_state=seed, shuffle=True
            )
        except ValueError:
            keep = held_out = indices[:0]
    if keep.size == 0 or held_out.size == 0:
        raise InvalidDataError(
            f"cannot split {len(y)} examples into a non-empty {what} part (fraction "
            f"{fraction}) and a non-empty rest: an empty split; use more data or another fraction"
        )
    return np.sort(keep), np.sort(held_out)
