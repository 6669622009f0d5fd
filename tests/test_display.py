"""displaCy shows the component's entities in colour, though UniNER labels are free lower-case text."""

import re

import spacy
from spacy import displacy

from spacy_universalner import displacy_colors
from spacy_universalner.component import UniversalNER
from spacy_universalner.prompt import UniNERTemplate
from spacy_universalner.types import Generation

TEXT = "Guido van Rossum created Python at CWI in Amsterdam."
ANSWERS = {
    "person": '["Guido van Rossum"]',
    "programming language": '["Python"]',
    "organization": '["CWI"]',
    "disease": "[]",
    "location": '["Amsterdam", "CWI in Amsterdam"]',
}


class _Answers:
    name = "fixed-answers"

    def __call__(self, queries, max_new_tokens=256):
        asked = {UniNERTemplate().query_suffix(label): label for label in ANSWERS}
        return [Generation(ANSWERS[asked[query.suffix]]) for query in queries]


def _doc():
    nlp = spacy.blank("en")
    pipe = UniversalNER(nlp.vocab, labels=list(ANSWERS), model=_Answers())
    return pipe, pipe(nlp.make_doc(TEXT))


def _background(html, text):
    """The colour displaCy gave the mark around ``text``."""
    match = re.search(r'<mark class="entity" style="background: (#\w+);[^>]*>\s*' + re.escape(text), html)
    return match.group(1) if match else None


def test_known_types_get_spacys_colours_and_the_others_distinct_ones_in_label_order():
    colors = displacy_colors(["person", "programming language", "disease", "gene", "ORG", "Restaurant Name"])
    assert colors["person"] == displacy_colors(["PERSON"])["PERSON"] == "#aa9cfc"  # as en_core_web_sm shows PERSON
    assert colors["ORG"] == "#7aecec" and colors["programming language"] == "#ff8197"  # LANGUAGE's
    others = [colors[label] for label in ("disease", "gene", "Restaurant Name")]
    assert len(set(others)) == 3 and not set(others) & {"#ddd", "#aa9cfc", "#7aecec"}
    assert displacy_colors(["disease", "gene"]) == {"disease": others[0], "gene": others[1]}


def test_without_colours_the_labels_render_grey_and_with_them_in_colour():
    pipe, doc = _doc()
    plain = displacy.render(doc, style="ent")
    assert _background(plain, "CWI in Amsterdam") == _background(plain, "Python") == "#ddd"  # LOCATION is not LOC
    assert _background(plain, "Guido van Rossum") == "#aa9cfc"  # displaCy upper-cases: "person" is PERSON
    html = displacy.render(doc, style="ent", options={"colors": displacy_colors(pipe.labels)})
    assert _background(html, "CWI in Amsterdam") == "#ff9561" and _background(html, "Python") == "#ff8197"
    assert _background(html, "Guido van Rossum") == "#aa9cfc"


def test_overlapping_entities_render_from_the_spans_key_in_colour():
    pipe, doc = _doc()
    assert {span.text for span in doc.spans["uniner"]} >= {"CWI", "CWI in Amsterdam"}  # overlapping
    colors = displacy_colors(pipe.labels)
    html = displacy.render(doc, style="span", options={"spans_key": "uniner", "colors": colors})
    assert f"background: {colors['location']}" in html and f"background: {colors['organization']}" in html
