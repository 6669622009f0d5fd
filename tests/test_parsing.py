"""Reading answers: the official rule first, a lenient fallback second, and never an exception."""

import random
import string
import time

import pytest

from spacy_universalner.eval import uniner_f1
from spacy_universalner.parsing import MAX_EVAL_CHARS, official_items, parse_answer, postprocess_response


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


def test_assistant_marker_inside_a_mention_empties_the_official_answer_but_not_the_lenient_one():
    # The official post-processing keeps the text after the last "ASSISTANT:", so the metric scores this
    # answer as empty, exactly as UniNER's evaluator; the component's lenient path reads the whole response.
    response = '["Alice", "ASSISTANT:"]'
    assert official_items(postprocess_response(response)) == []
    assert uniner_f1([response], ['["Alice"]'])["recall"] == 0.0
    parsed = parse_answer(response)
    assert parsed.mentions == ["Alice", "ASSISTANT:"] and parsed.method == "lenient"
    assert parse_answer(response, lenient=False).method == "failed"


def test_a_model_that_talks_on_past_its_answer_still_gives_the_last_answer():
    assert parse_answer('["a"] USER: more? ASSISTANT: ["b"]').mentions == ["b"]


def _nested(depth_pairs: int) -> str:
    return '[{"k": ' * depth_pairs + "1" + "}]" * depth_pairs


def _parse_at_depth(response: str, frames: int):
    return _parse_at_depth(response, frames - 1) if frames else parse_answer(response)


def test_deep_nesting_parses_the_same_at_any_call_depth():
    # 960 brackets deep: json.loads used to succeed at the top of the stack and fail 200 frames deeper.
    response = _nested(480)
    top, deeper = parse_answer(response), _parse_at_depth(response, 200)
    assert top == deeper
    assert top.mentions == ["k"] * 480 and top.method == "lenient"  # quoted strings, read linearly


@pytest.mark.parametrize("item", ["(1,2)", "{1:2}"])
def test_huge_answers_are_not_evaluated(item):
    # 6 MB of Python literal: ast.literal_eval took 27 s and 3.2 GB; only 20,000 characters are ever evaluated.
    response = "[" + (item + ",") * 10**6 + "]"
    started = time.process_time()
    parsed = parse_answer(response)
    assert time.process_time() - started < 5  # CPU seconds: other load on the machine does not count
    assert parsed.mentions == []
    assert len(response) > MAX_EVAL_CHARS


def test_answers_up_to_the_bound_are_still_evaluated_and_longer_ones_read_by_the_fallback():
    short = str(["Paris"] * 2000)  # single quotes: only ast.literal_eval reads it as a list
    assert len(short) < MAX_EVAL_CHARS and parse_answer(short).mentions == ["Paris"] * 2000
    long = str(["Paris"] * 3000)
    assert len(long) > MAX_EVAL_CHARS and parse_answer(long).mentions == ["Paris"] * 3000  # quoted strings
