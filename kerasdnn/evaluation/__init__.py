"""Evaluation: predictions of a trained model (:mod:`.predict`), the scikit-learn
reports (:mod:`.reports`) and the report of a saved run rebuilt on any backend
(:mod:`.saved_run`: ``kerasdnn.evaluate(...)``).  Library only: the command is
``kerasdnn/evaluate.py``."""
