"""This package's registries, made on spaCy's registry so config files can use them (spacy-llm's pattern).

``@uniner_backends`` builds generation backends, ``@uniner_templates`` prompt templates,
``@uniner_readers`` benchmark readers, ``@uniner_teachers`` distillation teachers. Third-party packages
can add their own through the ``spacy_uniner_*`` entry-point groups. This module imports nothing from
the package: each function registers itself where it is defined (the template in :mod:`.templates`).
"""

import catalogue
import spacy

for _name in ("uniner_backends", "uniner_templates", "uniner_readers", "uniner_teachers"):
    if _name not in spacy.util.registry.get_registry_names():
        spacy.util.registry.create(_name, entry_points=True)


class registry(spacy.util.registry):
    """spaCy's registry, with this package's registries typed for editors and type checkers."""

    uniner_backends: catalogue.Registry
    uniner_templates: catalogue.Registry
    uniner_readers: catalogue.Registry
    uniner_teachers: catalogue.Registry


uniner_backends = registry.uniner_backends
uniner_templates = registry.uniner_templates
uniner_readers = registry.uniner_readers
uniner_teachers = registry.uniner_teachers

__all__ = ["registry", "uniner_backends", "uniner_readers", "uniner_teachers", "uniner_templates"]
