"""Colours for displaCy: UniNER labels are free text ("person", "programming language"), and displaCy
colours only spaCy's upper-case labels (PERSON, ORG...), so ours would all render grey.

    from spacy import displacy
    colors = displacy_colors(nlp.get_pipe("universal_ner").labels)
    displacy.render(doc, style="ent", options={"colors": colors})
    displacy.render(doc, style="span", options={"spans_key": "uniner", "colors": colors})
"""

from typing import Dict, Iterable, Optional

#: Free-text types that mean one of spaCy's labels: they get that label's colour.
SPACY_EQUIVALENTS = {
    "person": "PERSON",
    "people": "PERSON",
    "politician": "PERSON",
    "scientist": "PERSON",
    "writer": "PERSON",
    "researcher": "PERSON",
    "musical artist": "PERSON",
    "actor": "PERSON",
    "director": "PERSON",
    "organization": "ORG",
    "organisation": "ORG",
    "company": "ORG",
    "university": "ORG",
    "band": "ORG",
    "political party": "ORG",
    "location": "LOC",
    "place": "LOC",
    "country": "GPE",
    "city": "GPE",
    "state": "GPE",
    "nationality": "NORP",
    "religion": "NORP",
    "facility": "FAC",
    "building": "FAC",
    "event": "EVENT",
    "award": "EVENT",
    "election": "EVENT",
    "conference": "EVENT",
    "product": "PRODUCT",
    "law": "LAW",
    "language": "LANGUAGE",
    "programming language": "LANGUAGE",
    "program language": "LANGUAGE",
    "work of art": "WORK_OF_ART",
    "book": "WORK_OF_ART",
    "song": "WORK_OF_ART",
    "album": "WORK_OF_ART",
    "movie": "WORK_OF_ART",
    "title": "WORK_OF_ART",
    "poem": "WORK_OF_ART",
    "date": "DATE",
    "year": "DATE",
    "time": "TIME",
    "money": "MONEY",
    "price": "MONEY",
    "quantity": "QUANTITY",
    "percent": "PERCENT",
}

#: Light colours (dark text stays readable) for every other type, handed out in label order.
PALETTE = (
    "#8ecae6",
    "#ffb4a2",
    "#b5e48c",
    "#f6bd60",
    "#cdb4db",
    "#90dbf4",
    "#f28482",
    "#a3c4f3",
    "#ffd6a5",
    "#caffbf",
    "#fdffb6",
    "#ffc6ff",
    "#9bf6ff",
    "#e9c46a",
    "#84a59d",
    "#f5cac3",
)


def displacy_colors(labels: Iterable[str]) -> Dict[str, str]:
    """``label -> colour`` for ``options={"colors": ...}`` of ``displacy.render``/``serve``.

    A label displaCy knows (any case) or a common free-text equivalent ("person" -> PERSON) gets spaCy's
    colour, so entities look as they do with spaCy's own models; the others get distinct palette colours
    in the order given (pass the component's ``labels`` for colours that stay put from Doc to Doc).
    """
    from spacy.displacy.render import DEFAULT_LABEL_COLORS

    colors: Dict[str, str] = {}
    others = []
    for label in dict.fromkeys(labels):
        known: Optional[str] = label.upper().replace(" ", "_")
        known = known if known in DEFAULT_LABEL_COLORS else SPACY_EQUIVALENTS.get(label.lower())
        if known:
            colors[label] = DEFAULT_LABEL_COLORS[known]
        else:
            others.append(label)
    for i, label in enumerate(others):
        colors[label] = PALETTE[i % len(PALETTE)]
    return colors
