"""The network: :func:`~kerasdnn.network.models.build_model` and the ``DNN`` it returns
(:mod:`.models`), its seeded initializers (:mod:`.initializers`), the metrics its steps
update (:mod:`.step_metrics`) and one custom training step per backend (:mod:`.steps`).
Library only: no command, no printing."""
