"""Training: a run as a library (:mod:`.run`: what ``kerasdnn.train(...)`` is), the one
fit loop (:mod:`.fitting`), the data a run loads (:mod:`.data`), its callbacks,
checkpoint, class weights, schedules and fine-tuning, data-parallel training
(:mod:`.distribute`), the scikit-learn estimator (:mod:`.estimator`) and one
configuration on every backend (:mod:`.crossbackend`: ``kerasdnn.compare(...)``).
Library only: the commands that start these live in ``kerasdnn/train.py`` and
``kerasdnn/compare.py``."""
