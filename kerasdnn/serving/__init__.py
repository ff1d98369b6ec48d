"""Export for serving: a run's model with its preprocessing inside, as ONNX or a
SavedModel (:mod:`.artifact`: ``kerasdnn.export(...)``; tables: :mod:`.table_export`).
Library only: the command is ``kerasdnn/export.py``."""
