"""Generation backends, registered in ``@uniner_backends``; each module imports its heavy libraries lazily."""
from .base import Backend, BackendError, Generation

__all__ = ["Backend", "BackendError", "Generation"]
