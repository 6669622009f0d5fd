"""Generation backends, registered in ``@uniner_backends``; each module imports its heavy libraries lazily."""
from .base import Backend, BackendError, Generation
from . import hf  # noqa: F401  (registers spacy_universalner.HuggingFace.v1; imports no torch)

__all__ = ["Backend", "BackendError", "Generation"]
