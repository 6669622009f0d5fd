"""Each mention gets the probability the model gave to writing it, on spans, span groups and ents."""

import math

import pytest
import spacy
from spacy.tokens import Doc

from spacy_universalner.component import UniversalNER
from spacy_universalner.confidence import mention_scores
from spacy_universalner.testing import KeywordBackend
from spacy_universalner.types import Generation


def _generation(pieces_and_logprobs):
    """A generation built from (token text, log-prob) pairs, with the offsets a backend would give."""
    text, offsets, logprobs = "", [], []
    for piece, lp in pieces_and_logprobs:
        offsets.append((len(text), len(text) + len(piece)))
        text += piece
        logprobs.append(lp)
    return Generation(text, logprobs, offsets)


ANSWER = _generation(
    [
        (" [", -0.1),
        ('"', -0.2),
        ("Bill", -0.3),
        (" Gates", -0.4),
        ('",', -0.5),
        (' "', -0.6),
        ("Paris", -0.7),
        ('"]', -0.8),
    ]
)


def test_score_is_the_probability_of_the_tokens_covering_the_quoted_mention():
    bill, paris = mention_scores(ANSWER, ["Bill Gates", "Paris"])
    assert bill == pytest.approx(math.exp(-(0.2 + 0.3 + 0.4 + 0.5)))
    assert paris == pytest.approx(math.exp(-(0.6 + 0.7 + 0.8)))


def test_repeated_mentions_are_found_in_order():
    gen = _generation([('["', -0.1), ("A", -1.0), ('", "', -0.1), ("A", -2.0), ('"]', -0.1)])
    first, second = mention_scores(gen, ["A", "A"])
    assert first > second


def test_no_logprobs_means_no_score():
    assert mention_scores(Generation(' ["Bill Gates"]'), ["Bill Gates"]) == [None]
    assert mention_scores(ANSWER, ["Steve Jobs"]) == [None]


@pytest.fixture
def nlp():
    return spacy.blank("en")


def _pipe(nlp, generation, threshold=None, labels=("person",)):
    """A component whose model answers ``generation`` to every question."""
    answers = KeywordBackend(raw=dict.fromkeys(labels, generation))
    return UniversalNER(nlp.vocab, labels=list(labels), model=answers, threshold=threshold)


def test_scores_on_span_group_and_span_extension(nlp):
    doc = _pipe(nlp, ANSWER)(nlp("Bill Gates moved to Paris."))
    group = doc.spans["uniner"]
    assert [s.text for s in group] == ["Bill Gates", "Paris"]
    assert group.attrs["scores"] == pytest.approx([math.exp(-1.4), math.exp(-2.1)])
    assert [s._.uniner_score for s in group] == group.attrs["scores"]
    assert [e._.uniner_score for e in doc.ents] == group.attrs["scores"]


def test_same_words_under_two_labels_keep_their_own_scores(nlp):
    paris = {
        "person": _generation([('["', 0.0), ("Paris", -0.1), ('"]', 0.0)]),
        "city": _generation([('["', 0.0), ("Paris", -2.0), ('"]', 0.0)]),
    }
    pipe = UniversalNER(nlp.vocab, labels=["person", "city"], model=KeywordBackend(raw=paris), annotate="spans")
    doc = pipe(nlp("Paris is nice."))
    assert {s.label_: round(s._.uniner_score, 3) for s in doc.spans["uniner"]} == {
        "person": round(math.exp(-0.1), 3),
        "city": round(math.exp(-2.0), 3),
    }


def test_threshold_drops_low_confidence_mentions(nlp):
    doc = _pipe(nlp, ANSWER, threshold=0.2)(nlp("Bill Gates moved to Paris."))
    assert [s.text for s in doc.spans["uniner"]] == ["Bill Gates"]  # 0.25 kept, 0.12 dropped
    assert doc._.uniner_unaligned == []


def test_unscored_answers_get_none_and_pass_the_threshold(nlp):
    doc = _pipe(nlp, Generation(' ["Paris"]'), threshold=0.9)(nlp("Bill Gates moved to Paris."))
    assert [s.text for s in doc.spans["uniner"]] == ["Paris"]
    assert doc.spans["uniner"].attrs["scores"] == [None]
    assert doc.spans["uniner"][0]._.uniner_score is None


def test_scores_survive_doc_serialization(nlp):
    doc = _pipe(nlp, ANSWER)(nlp("Bill Gates moved to Paris."))
    restored = Doc(nlp.vocab).from_bytes(doc.to_bytes())
    assert restored.spans["uniner"].attrs["scores"] == doc.spans["uniner"].attrs["scores"]
    assert restored.spans["uniner"][0]._.uniner_score == doc.spans["uniner"][0]._.uniner_score


def test_threshold_must_be_a_probability(nlp):
    with pytest.raises(ValueError, match="threshold"):
        _pipe(nlp, ANSWER, threshold=2.0)


def test_a_number_that_is_no_log_probability_gives_no_score():
    # A server's positive log-probability (1000) raised OverflowError; NaN gave scores outside [0, 1].
    from spacy_universalner.confidence import probability

    for bad in (1000.0, float("nan"), float("inf"), float("-inf"), 10**400, True, None, "x"):
        assert probability([-0.1, bad]) is None
    assert probability([]) is None
    assert probability([1e-7, 0.0]) == 1.0  # a server's rounding above 0 reads as certainty
    assert probability([-1e308, -1e308]) == 0.0  # underflow is a probability of 0, not an error
