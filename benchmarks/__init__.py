"""Benchmarks that print tables (never timed tests).

- ``python -m benchmarks.epoch``: seconds per training epoch of the seed network
  through kerasdnn, stock Keras ``fit`` and a pure PyTorch loop, against the FLOP floor.
- ``python -m benchmarks.startup``: wall time of ``python -m kerasdnn.train --help``
  and ``import kerasdnn``, and a check that ``--help`` imports no backend.
- ``python -m benchmarks.search_pruning``: the same random search with and without
  ``--prune`` on every backend (epochs trained, best objective, wall time).
- ``python -m benchmarks.processes``: the cost of data parallelism per backend: one
  process against two processes on loopback with one device each (TensorFlow: two
  logical devices in one process), seconds per epoch and the communication + sync share.
- ``python -m benchmarks.hparams_view``: a ``--tensorboard`` search opened in a real
  TensorBoard server, its HParams view read over HTTP (exits 1 if it is empty).
- ``benchmarks/gpu_check.sh``: the epoch benchmark on an NVIDIA GPU, device
  prefetch on and off.

Each backend runs in its own subprocess; the parent process imports no backend.
Results and how to read them: ``BENCHMARKS.md``.
"""
