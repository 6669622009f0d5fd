"""Answers no model should give, read anyway: bounded in size and cost, and never making a Doc unsavable.

An answer comes from a model, a server or a shared cache file; whatever it holds, the component reads at
most ``MAX_ANSWER_CHARS`` characters of it, aligns each distinct string once, and keeps only text that
UTF-8 can encode (lone surrogates become U+FFFD), so ``doc.to_bytes``, ``DocBin`` and ``n_process`` work.
"""

import json

import spacy
from spacy.tokens import DocBin

import spacy_universalner.doc_spans as doc_spans
from spacy_universalner.distill.tuples import parse_tuples
from spacy_universalner.parsing import MAX_ANSWER_CHARS, clean_answer, parse_answer
from spacy_universalner.testing import KeywordBackend
from spacy_universalner.types import check_backend


def pipeline(answer: str):
    """A pipeline whose model gives every query ``answer``."""
    nlp = spacy.blank("en")
    component = nlp.add_pipe("universal_ner", config={"labels": ["person"]})
    component.model = KeywordBackend(raw={"person": answer})
    component.traits = check_backend(component.model)
    return nlp


def test_a_lone_surrogate_in_an_answer_leaves_the_doc_savable():
    # '["\ud800x"]' made doc.to_bytes, DocBin and n_process (E871) fail.
    for answer in ['["\ud800x", "Alice"]', '["\\ud800x", "Alice"]']:  # the code point, and the JSON escape
        doc = pipeline(answer)("Alice met Bob.")
        assert [e.text for e in doc.ents] == ["Alice"]
        assert doc._.uniner_unaligned[0]["text"] == "\ufffdx"
        doc.to_bytes()
        DocBin(store_user_data=True, docs=[doc]).to_bytes()
    assert parse_tuples('[("\\udc00Ada", "person")]').pairs == [("\ufffdAda", "person")]


def test_cleaning_keeps_offsets_and_normal_answers_unchanged():
    assert clean_answer('["Alice", "Bob"]') == '["Alice", "Bob"]'
    assert clean_answer("a\ud800b\udfffc") == "a\ufffdb\ufffdc"  # one character for one: token offsets stay valid
    assert len(clean_answer("x" * (MAX_ANSWER_CHARS + 10))) == MAX_ANSWER_CHARS == 65_536


def test_a_runaway_answer_is_read_up_to_the_cap_and_each_string_aligned_once(monkeypatch):
    # A 10 MiB answer took 22-93 s and 2.5 GB: every duplicate was aligned again, megabyte regexes compiled.
    answer = json.dumps(["Alice"] * 200_000 + [f"w{i}" for i in range(100_000)] + ["Bob"])  # 2.6 MB
    aligned = []
    find = doc_spans.find_mention
    monkeypatch.setattr(
        doc_spans, "find_mention", lambda doc, mention, *a: aligned.append(mention) or find(doc, mention, *a)
    )
    doc = pipeline(answer)("Alice met Bob.")
    assert len(doc._.uniner_responses[0]["response"]) == MAX_ANSWER_CHARS  # what was read is what is kept
    assert [e.text for e in doc.ents] == ["Alice"]  # "Bob" came after the cap, as after a token limit
    assert len(aligned) == len(set(aligned)) and aligned[0] == "Alice"
    assert parse_answer(answer).mentions == parse_answer(answer[:MAX_ANSWER_CHARS]).mentions


def test_the_cap_does_not_change_a_normal_answer():
    answer = json.dumps([f"mention {i}" for i in range(500)])  # far longer than UniNER's 256 tokens
    assert len(answer) < MAX_ANSWER_CHARS and parse_answer(answer).mentions == json.loads(answer)
