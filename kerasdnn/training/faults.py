"""A test hook that kills the process at a named point: how the fault tests crash a run
deterministically instead of by timing.

Set ``KERASDNN_FAULT=<point>:<n>`` and the process SIGKILLs itself the ``n``-th time
(1-based) it reaches ``fault_point("<point>")``.  Without the variable every call is a
no-op.  The points of a run (:mod:`kerasdnn.training.checkpoint`, :mod:`kerasdnn.training.run`,
:mod:`tuning.search`):

=====================  ==============================================================
``batch``              after a training batch (inside an epoch)
``epoch_end``          an epoch trained, before its checkpoint is written
``checkpoint_weights`` the checkpoint's weights written to its scratch folder
``checkpoint_rename``  the scratch checkpoint complete, before it replaces the last one
``checkpoint_renamed`` the new checkpoint in place, the previous one not yet deleted
``finish_model``       ``model.keras`` written, the report not yet
``atomic_replace``     a file of :mod:`kerasdnn.core.io` complete under its temporary name
``finish_report``      the report written, the checkpoint not yet removed
``finish_cleanup``     the checkpoint moved aside, not yet deleted
``trial_end``          a search trial finished (before KerasTuner records it)
``trial_saved``        KerasTuner wrote a trial's ``trial.json`` (at its start and end)
``best_swap``          the retrained ``best/`` complete in its scratch folder
=====================  ==============================================================

Example:
    >>> fault_point("epoch_end")  # KERASDNN_FAULT unset: nothing happens
"""

from __future__ import annotations

import os
import signal

__all__ = ["ENV", "fault_point"]

ENV = "KERASDNN_FAULT"
_reached: dict[str, int] = {}


def fault_point(name: str) -> None:
    """SIGKILL this process if ``KERASDNN_FAULT`` asks for the current visit of ``name``."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, count = wanted.rpartition(":")
    if point != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] == int(count):
        os.kill(os.getpid(), signal.SIGKILL)
