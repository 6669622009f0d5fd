"""Reading answers: the official rule first, a lenient fallback second, and never an exception."""
import random
import string

import pytest

from spacy_universalner.parsing import official_items, parse_answer, postprocess_response


@pytest.mark.parametrize(
    "response,mentions,method",
    [
        ('["Bill Gates", "Microsoft"]', ["Bill Gates", "Microsoft"], "official"),
        ("[]", [], "official"),
        ('  ["Paris"]  ', ["Paris"], "official"),
        ('["Paris"] and then some chatter', ["Paris"], "official"),
        ("[1990]", ["1990"], "official"),
        ('Sure! The answer is ["Paris", "Rome"]', ["Paris", "Rome"], "lenient"),
        ("['Paris', 'Rome']", ["Paris", "Rome"], "lenient"),
        ('["AT&T", "Rock [band]"]', ["AT&T", "Rock [band]"], "lenient"),
        ('["Paris", "Ro', ["Paris"], "lenient"),
        ("I don't know.", [], "failed"),
        ("", [], "failed"),
    ],
)
def test_answers_are_read_officially_then_leniently(response, mentions, method):
    parsed = parse_answer(response)
    assert parsed.mentions == mentions
    assert parsed.method == method


def test_lenient_fallback_can_be_switched_off():
    assert parse_answer("Sure: ['Paris']", lenient=False).mentions == []
    assert parse_answer("Sure: ['Paris']", lenient=False).method == "failed"


def test_postprocessing_keeps_the_text_after_the_last_assistant_marker():
    assert postprocess_response(' ["a"] USER: hi ASSISTANT: ["b"] ') == '["b"]'


def test_official_items_normalise_and_deduplicate_like_the_official_evaluator():
    assert official_items('["The Beatles", "beatles", "U.S.", "US"]') == ["beatles", "us"]
    assert official_items(' ["x"]') == []  # the official regex anchors at position 0
    assert official_items('["a]b"]') == []  # first "]" ends the list: invalid JSON
    assert official_items("[1990]") == []  # non-strings make the official normaliser fail


def test_no_model_output_can_raise():
    rng = random.Random(0)
    alphabet = string.printable + "[]\"'\\ä中😀"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        parsed = parse_answer(text)
        assert all(isinstance(m, str) and m.strip() for m in parsed.mentions)
        assert isinstance(official_items(text), list)
