"""Catalogue registries, attached to spaCy's registry so config files can use them.

``@uniner_backends`` builds generation backends, ``@uniner_templates`` prompt templates.
Third-party packages can add their own through the ``spacy_uniner_backends`` and
``spacy_uniner_templates`` entry-point groups.
"""
import catalogue
from spacy.util import registry


def _ensure(name: str) -> catalogue.Registry:
    if not hasattr(registry, name):
        setattr(registry, name, catalogue.create("spacy", name, entry_points=True))
    return getattr(registry, name)


uniner_backends = _ensure("uniner_backends")
uniner_templates = _ensure("uniner_templates")
uniner_readers = _ensure("uniner_readers")  # benchmark readers (spacy_universalner.eval)
uniner_teachers = _ensure("uniner_teachers")  # distillation teachers (spacy_universalner.distill.teachers)

# Registered here rather than with a decorator in .prompt, so that the template (used by `build`,
# `train`, the readers...) can be imported without spaCy, and with it thinc's import of torch.
from .prompt import make_uniner_template  # noqa: E402

uniner_templates.register("spacy_universalner.UniNER.v1", func=make_uniner_template)

__all__ = ["registry", "uniner_backends", "uniner_templates"]
