"""Evaluation: UniNER's benchmark protocol for any spaCy pipeline.

``uniner_f1`` is the official UniNER metric (importing this package does not import torch).
Readers, benchmark definitions, the evaluation loop and the reports live in submodules.
"""

from .metrics import partial_f1, uniner_f1

__all__ = ["partial_f1", "uniner_f1"]
