"""Benchmarks that print tables (never timed tests).

- ``python -m benchmarks.epoch``: seconds per training epoch of the seed network
  through kerasdnn, stock Keras ``fit`` and a pure PyTorch loop, against the FLOP floor.
- ``python -m benchmarks.startup``: wall time of ``python -m kerasdnn.train --help``
  and ``import kerasdnn``, and a check that ``--help`` imports no backend.
- ``benchmarks/gpu_check.sh``: the epoch benchmark on an NVIDIA GPU, device
  prefetch on and off.

Each backend runs in its own subprocess; the parent process imports no backend.
Results and how to read them: ``BENCHMARKS.md``.
"""
