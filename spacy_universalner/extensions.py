"""The ``Doc`` and ``Span`` extensions the package writes and reads, registered in one place.

``doc._.uniner_responses`` (the raw answers), ``doc._.uniner_unaligned`` (answer strings that matched no text) and
``span._.uniner_score`` (the probability the model gave a mention; a getter over ``doc.user_data``, so it survives
``Doc.to_bytes``). :mod:`.doc_spans` calls :func:`install_extensions` when it is imported; calling it again is harmless.
"""

from spacy.tokens import Doc, Span

from .confidence import get_span_score

DOC_EXTENSIONS = ("uniner_responses", "uniner_unaligned")
SPAN_EXTENSIONS = ("uniner_score",)  # each a getter of the score


def install_extensions() -> None:
    """Register the extensions that are not registered yet (never overwriting one that is)."""
    for name in DOC_EXTENSIONS:
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=None)
    for name in SPAN_EXTENSIONS:
        if not Span.has_extension(name):
            Span.set_extension(name, getter=get_span_score)
