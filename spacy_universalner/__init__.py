"""UniversalNER for spaCy: open named-entity recognition with instruction-tuned LLMs.

Importing this package is cheap: the names below are loaded on first use (PEP 562), so
``python -m spacy_universalner --help`` imports neither spaCy nor torch, and spaCy, which imports
every installed plugin, pays only for what a pipeline uses. torch and transformers are imported
only when a model is first needed.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_LAZY = {
    "Query": ".prompt",
    "UniNERTemplate": ".prompt",
    "parse_answer": ".parsing",
    "uniner_backends": ".registry",
    "uniner_templates": ".registry",
    "displacy_colors": ".display",
}

__all__ = list(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value
