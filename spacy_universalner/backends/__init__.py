"""Generation backends, registered in ``@uniner_backends``; each module imports its heavy libraries lazily."""
from .base import Backend, BackendError, Generation
from . import hf  # noqa: F401  (registers spacy_universalner.HuggingFace.v1; imports no torch)
from . import openai  # noqa: F401  (registers spacy_universalner.OpenAICompatible.v1; imports no requests)
from . import vllm  # noqa: F401  (registers spacy_universalner.VLLM.v1; imports no vllm)

__all__ = ["Backend", "BackendError", "Generation"]
