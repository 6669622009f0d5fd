"""The official UniNER metric: the evaluator's rule on fixed answers worked out by hand, its counts, its averaging."""

import json
import random

import pytest

from spacy_universalner.eval import partial_f1, uniner_f1
from spacy_universalner.parsing import official_items

# The official evaluator's rule (../shared/UNINER_REFERENCE.md, section 2), worked out by hand for fixed
# answers: take the first [...] at position 0 up to the first "]" on one line, json.loads it, normalise each
# string (lowercase, drop ASCII punctuation, drop a/an/the, collapse spaces), keep the first of duplicates;
# any failure (no match, bad JSON, an item that is not a string) is an empty answer.
OFFICIAL_ITEMS = [
    ('["Bill Gates", "the Beatles"]', ["bill gates", "beatles"]),
    ('["The Beatles", "beatles", "Beatles."]', ["beatles"]),  # duplicates after normalisation count once
    ('["U.S.A.", "e-mail"]', ["usa", "email"]),  # punctuation deleted, not replaced
    ('["a Bayes classifier", "An Apple"]', ["bayes classifier", "apple"]),
    ('["Dr. Who"]', ["dr who"]),
    ('["New  York", "new york"]', ["new york"]),
    ('["é", "É"]', ["é"]),
    ('["Bill\\"s"]', ["bills"]),  # the escaped quote is punctuation
    ('["", "A"]', [""]),  # "A" is the article "a": both normalise to "", one item
    ('["Ada"] and more ["Bob"]', ["ada"]),  # only the first list
    ('["Bill Gates", "Steve Jo', []),  # truncated: no closing bracket
    ('["Ada", "Bob"', []),
    ('The answer is ["Bill Gates"]', []),  # the list must start the answer
    (' ["Ada"]', []),  # (predictions are stripped before this; see the post-processing test)
    ('["f[x] notation"]', []),  # the first "]" ends the match: '["f[x]' is not JSON
    ('["x]y"]', []),
    ('[["Bill Gates", "person"]]', []),  # likewise for a nested list
    ("['Ada']", []),  # single quotes are not JSON
    ('["Ada",\n"Bob"]', []),  # the match does not cross a newline
    ('["x", 3]', []),  # a number cannot be normalised: the whole answer fails
    ("[null]", []),
    ("[1]", []),
    ("[]", []),
    ("", []),
]


@pytest.mark.parametrize("answer, items", OFFICIAL_ITEMS)
def test_answers_are_read_as_the_official_evaluator_reads_them(answer, items):
    assert official_items(answer) == items


def test_perfect_answer_scores_one_up_to_the_official_smoothing():
    scores = uniner_f1(['["Bill Gates", "the Beatles"]'], ['["Bill Gates", "the Beatles"]'])
    assert scores["f1"] == pytest.approx(1.0, abs=1e-9) and scores["f1"] < 1.0
    assert (scores["n_correct"], scores["n_pred"], scores["n_gold"]) == (2, 2, 2)


def test_duplicates_after_normalisation_count_once():
    scores = uniner_f1(['["The Beatles", "beatles", "Beatles."]'], ['["Beatles"]'])
    assert (scores["n_correct"], scores["n_pred"], scores["n_gold"]) == (1, 1, 1)


def test_punctuation_is_deleted_not_replaced():
    scores = uniner_f1(['["U.S.A.", "e-mail"]'], ['["USA", "email"]'])
    assert scores["n_correct"] == 2


def test_articles_are_ignored():
    scores = uniner_f1(['["a Bayes classifier", "An Apple"]'], ['["Bayes classifier", "apple"]'])
    assert scores["n_correct"] == 2


def test_truncated_list_is_an_empty_answer():
    scores = uniner_f1(['["Bill Gates", "Steve Jo'], ['["Bill Gates"]'])
    assert (scores["n_pred"], scores["n_gold"]) == (0, 1)


def test_text_before_the_list_is_an_empty_answer():
    scores = uniner_f1(['The answer is ["Bill Gates"]'], ['["Bill Gates"]'])
    assert scores["n_pred"] == 0


def test_bracket_inside_a_mention_breaks_the_answer():
    scores = uniner_f1(['["f[x] notation"]'], ['["f[x] notation"]'])
    assert (scores["n_pred"], scores["n_gold"]) == (0, 0)


def test_empty_answers_and_empty_strings():
    scores = uniner_f1(["[]", "", "  ", "[]"], ["[]", "[]", '["x"]', ""])
    assert (scores["n_correct"], scores["n_pred"], scores["n_gold"]) == (0, 0, 1)
    assert scores["f1"] == 0.0


def test_raw_generation_is_post_processed_like_the_official_inference():
    raw = 'USER: What describes person in the text? ASSISTANT:  ["Ada Lovelace"] '
    scores = uniner_f1([raw], ['["Ada Lovelace"]'])
    assert scores["n_correct"] == 1


def test_single_quotes_and_newlines_score_as_empty():
    scores = uniner_f1(["['Ada']", '["Ada",\n"Bob"]'], ['["Ada"]', '["Ada"]'])
    assert scores["n_pred"] == 0


def test_micro_average_over_queries():
    preds = ['["a1", "b1"]', '["c1"]', "[]"]
    golds = ['["a1"]', '["c1", "d1"]', '["e1"]']
    scores = uniner_f1(preds, golds)
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 4)


def test_lengths_must_match():
    with pytest.raises(ValueError):
        uniner_f1(["[]"], [])


_PIECES = [
    '"',
    "[",
    "]",
    ", ",
    " ",
    "The ",
    "a ",
    "an",
    "Bill",
    "Gates",
    "beatles",
    ".",
    "-",
    "'",
    "\n",
    "ASSISTANT:",
    "1",
    "null",
    "é",
    "\\",
    "[[",
    '"x"',
    '"The Beatles"',
    '"bill gates"',
]


def test_fuzzed_answers_never_raise_and_scores_are_the_micro_average_of_per_query_counts():
    rng = random.Random(1234)
    for _ in range(300):
        n = rng.randint(1, 12)
        preds = ["".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 12))) for _ in range(n)]
        golds = [json.dumps(rng.sample(["Bill Gates", "the Beatles", "US", "x"], rng.randint(0, 3))) for _ in range(n)]
        total = uniner_f1(preds, golds)
        per_query = [uniner_f1([p], [g]) for p, g in zip(preds, golds)]
        for key in ("n_correct", "n_pred", "n_gold"):
            assert total[key] == sum(q[key] for q in per_query)
        assert 0.0 <= total["f1"] < 1.0


def test_partial_match_gives_half_credit_for_a_shared_word_once_per_gold():
    scores = partial_f1(
        ['["Bill Gates", "Gates Foundation", "Melinda Gates"]'], ['["Bill Gates", "Melinda French Gates"]']
    )
    # exact: "bill gates" (1.0); "gates foundation" claims "melinda french gates" (0.5); nothing left for the third.
    assert scores["n_correct"] == 1.5
    assert (scores["n_pred"], scores["n_gold"]) == (3, 2)


def test_partial_match_equals_the_official_metric_when_nothing_overlaps():
    preds, golds = ['["Ada", "Bob"]', "[]"], ['["Ada"]', '["Carol"]']
    assert partial_f1(preds, golds)["f1"] == uniner_f1(preds, golds)["f1"]


def test_the_package_import_is_light():
    import subprocess
    import sys

    # spaCy (through thinc) may import torch itself; the metric must not pull in transformers.
    code = "import sys, spacy_universalner.eval as e; e.uniner_f1(['[]'], ['[]']); print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
