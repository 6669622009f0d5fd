"""The official UniNER metric, its edge cases, and agreement with an independent re-statement."""
import json
import random
import re
import string

import pytest

from spacy_universalner.eval import partial_f1, uniner_f1


# An independent re-statement of the official evaluator (universal-ner src/eval/evaluate.py),
# written from its description: the same behaviour, not the same code.
def _reference_items(text):
    found = re.match(r"\[(.*?)\]", text)
    try:
        loaded = json.loads(found.group() if found else "[]")
        out = []
        for raw in loaded:
            if isinstance(raw, (list, tuple)):
                norm = tuple(_reference_norm(x) for x in raw)
            else:
                norm = _reference_norm(raw)
            if norm not in out:
                out.append(norm)
        return out
    except Exception:
        return []


def _reference_norm(s):
    s = s.lower()
    s = "".join(c for c in s if c not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def reference_scores(raw_predictions, golds):
    correct = n_pred = n_gold = 0
    for raw, gold in zip(raw_predictions, golds):
        pred = raw.split("ASSISTANT:")[-1].strip()  # the official inference post-processing
        g, p = _reference_items(gold), _reference_items(pred)
        correct += sum(1 for t in p if t in g)
        n_pred += len(p)
        n_gold += len(g)
    prec = correct / (n_pred + 1e-10)
    rec = correct / (n_gold + 1e-10)
    return {"precision": prec, "recall": rec, "f1": 2 * prec * rec / (prec + rec + 1e-10)}


def assert_same(predictions, golds):
    ours = uniner_f1(predictions, golds)
    ref = reference_scores(predictions, golds)
    for key in ("precision", "recall", "f1"):
        assert ours[key] == ref[key], (key, ours[key], ref[key])  # bit for bit, no tolerance
    return ours


def test_perfect_answer_scores_one_up_to_the_official_smoothing():
    scores = assert_same(['["Bill Gates", "the Beatles"]'], ['["Bill Gates", "the Beatles"]'])
    assert scores["f1"] == pytest.approx(1.0, abs=1e-9) and scores["f1"] < 1.0
    assert (scores["n_correct"], scores["n_pred"], scores["n_gold"]) == (2, 2, 2)


def test_duplicates_after_normalisation_count_once():
    scores = assert_same(['["The Beatles", "beatles", "Beatles."]'], ['["Beatles"]'])
    assert (scores["n_correct"], scores["n_pred"], scores["n_gold"]) == (1, 1, 1)


def test_punctuation_is_deleted_not_replaced():
    scores = assert_same(['["U.S.A.", "e-mail"]'], ['["USA", "email"]'])
    assert scores["n_correct"] == 2


def test_articles_are_ignored():
    scores = assert_same(['["a Bayes classifier", "An Apple"]'], ['["Bayes classifier", "apple"]'])
    assert scores["n_correct"] == 2


def test_truncated_list_is_an_empty_answer():
    scores = assert_same(['["Bill Gates", "Steve Jo'], ['["Bill Gates"]'])
    assert (scores["n_pred"], scores["n_gold"]) == (0, 1)


def test_text_before_the_list_is_an_empty_answer():
    scores = assert_same(['The answer is ["Bill Gates"]'], ['["Bill Gates"]'])
    assert scores["n_pred"] == 0


def test_bracket_inside_a_mention_breaks_the_answer():
    scores = assert_same(['["f[x] notation"]'], ['["f[x] notation"]'])
    assert (scores["n_pred"], scores["n_gold"]) == (0, 0)


def test_empty_answers_and_empty_strings():
    scores = assert_same(["[]", "", "  ", "[]"], ["[]", "[]", '["x"]', ""])
    assert (scores["n_correct"], scores["n_pred"], scores["n_gold"]) == (0, 0, 1)
    assert scores["f1"] == 0.0


def test_raw_generation_is_post_processed_like_the_official_inference():
    raw = 'USER: What describes person in the text? ASSISTANT:  ["Ada Lovelace"] '
    scores = assert_same([raw], ['["Ada Lovelace"]'])
    assert scores["n_correct"] == 1


def test_single_quotes_and_newlines_score_as_empty():
    scores = assert_same(["['Ada']", '["Ada",\n"Bob"]'], ['["Ada"]', '["Ada"]'])
    assert scores["n_pred"] == 0


def test_micro_average_over_queries():
    preds = ['["a1", "b1"]', '["c1"]', "[]"]
    golds = ['["a1"]', '["c1", "d1"]', '["e1"]']
    scores = assert_same(preds, golds)
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 4)


def test_lengths_must_match():
    with pytest.raises(ValueError):
        uniner_f1(["[]"], [])


_PIECES = ['"', "[", "]", ", ", " ", "The ", "a ", "an", "Bill", "Gates", "beatles", ".", "-", "'",
           "\n", "ASSISTANT:", "1", "null", "é", "\\", "[[", '"x"', '"The Beatles"', '"bill gates"']


def _random_answer(rng):
    if rng.random() < 0.5:
        names = ["Bill Gates", "the Beatles", "Beatles", "U.S.", "US", "an apple", "Apple", "x]y", "", "A"]
        items = [rng.choice(names) for _ in range(rng.randint(0, 4))]
        if rng.random() < 0.1:
            return json.dumps([items, 3] if rng.random() < 0.5 else [items])
        text = json.dumps(items, ensure_ascii=rng.random() < 0.5)
        cut = rng.random()
        if cut < 0.1:
            text = text[: rng.randint(0, len(text))]
        elif cut < 0.2:
            text = rng.choice(["Answer: ", " ", "ASSISTANT: ", "\n"]) + text
        return text
    return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 12)))


def test_fuzzed_answers_agree_with_the_reference_to_the_last_digit():
    rng = random.Random(1234)
    for _ in range(300):
        n = rng.randint(1, 12)
        preds = [_random_answer(rng) for _ in range(n)]
        golds = [_random_answer(rng) for _ in range(n)]
        assert_same(preds, golds)


def test_partial_match_gives_half_credit_for_a_shared_word_once_per_gold():
    scores = partial_f1(['["Bill Gates", "Gates Foundation", "Melinda Gates"]'], ['["Bill Gates", "Melinda French Gates"]'])
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
