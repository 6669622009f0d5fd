"""The Doc and Span extensions are registered by one function, and registering them again changes nothing."""

import spacy
from spacy.tokens import Doc, Span

from spacy_universalner.confidence import set_span_scores
from spacy_universalner.extensions import install_extensions


def test_installing_the_extensions_twice_is_harmless():
    install_extensions()
    before = {name: Doc.get_extension(name) for name in ("uniner_responses", "uniner_unaligned")}
    score = Span.get_extension("uniner_score")
    install_extensions()
    assert {name: Doc.get_extension(name) for name in before} == before
    assert Span.get_extension("uniner_score") == score
    doc = spacy.blank("en")("Bill Gates founded Microsoft.")
    assert doc._.uniner_responses is None and doc._.uniner_unaligned is None
    set_span_scores(doc, {(0, 10, "person"): 0.9})
    assert Span(doc, 0, 2, label="person")._.uniner_score == 0.9
    assert Span(doc, 3, 4, label="organization")._.uniner_score is None


def test_importing_the_component_installs_them():
    import spacy_universalner.component  # noqa: F401

    assert Doc.has_extension("uniner_responses") and Doc.has_extension("uniner_unaligned")
    assert Span.has_extension("uniner_score")
