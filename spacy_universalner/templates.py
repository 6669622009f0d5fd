"""Registers UniNER's prompt template as ``spacy_universalner.UniNER.v1`` (``@uniner_templates``).

Kept apart from :mod:`.prompt` so that the template itself (used by ``build``, ``train``, the readers)
imports without spaCy, and with it thinc's import of torch. The component and the spacy-llm task import
this module; an installed package also finds the template through its entry point.
"""

from .prompt import make_uniner_template
from .registry import uniner_templates

uniner_templates.register("spacy_universalner.UniNER.v1", func=make_uniner_template)
