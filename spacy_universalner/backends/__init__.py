"""Generation backends, registered in ``@uniner_backends``; each module imports its heavy libraries lazily."""

from pathlib import Path
from typing import Any, Dict

from ..pretrained import resolve_model_name
from ..types import Backend, BackendError, Generation
from . import (
    gliner,  # noqa: F401  (registers spacy_universalner.GLiNER.v1; imports no torch)
    hf,  # noqa: F401  (registers spacy_universalner.HuggingFace.v1; imports no torch)
    openai,  # noqa: F401  (registers spacy_universalner.OpenAICompatible.v1; imports no requests)
    vllm,  # noqa: F401  (registers spacy_universalner.VLLM.v1; imports no vllm)
)


def is_span_model(name: str) -> bool:
    """Whether ``name`` is a span model (GLiNER architecture) rather than a causal LM.

    A folder is one when it holds ``gliner_config.json``; a hub id when its name says "gliner"
    (urchade/gliner_small-v2.1, knowledgator/gliner-multitask-large-v0.5); the packaged default is one.
    """
    folder = Path(resolve_model_name(name)).expanduser()
    if folder.is_dir():
        return (folder / "gliner_config.json").is_file()
    return "gliner" in name.lower()


def backend_config(name: str, device: str = "auto", dtype: str = "auto") -> Dict[str, Any]:
    """The ``model`` block for ``name``: the span backend for span models, else the Hugging Face one."""
    if is_span_model(name):
        return {"@uniner_backends": "spacy_universalner.GLiNER.v1", "name": name, "device": device}
    return {"@uniner_backends": "spacy_universalner.HuggingFace.v1", "name": name, "device": device, "dtype": dtype}


__all__ = ["Backend", "BackendError", "Generation", "backend_config", "is_span_model"]
