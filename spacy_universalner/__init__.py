"""UniversalNER for spaCy: open named-entity recognition with instruction-tuned LLMs.

Importing this package is cheap (spaCy imports every installed plugin): torch and transformers
are imported only when a model is first needed.
"""
from .prompt import Query, UniNERTemplate
from .parsing import parse_answer
from .registry import uniner_backends, uniner_templates

__version__ = "0.1.0"

__all__ = ["Query", "UniNERTemplate", "parse_answer", "uniner_backends", "uniner_templates", "__version__"]
