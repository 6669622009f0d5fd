"""Readers turn each benchmark format into Docs with gold spans; bad lines name file and line."""
import json

import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span

from spacy_universalner.eval.readers import (
    ANSWERS_KEY,
    GOLD_KEY,
    ReaderError,
    gold_answers,
    read_conll,
    read_docbin,
    read_instructuie,
    read_jsonl,
    read_uniner_conversations,
)


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def ents(doc):
    return [(s.text, s.label_) for s in doc.spans[GOLD_KEY]]


def test_conll_token_tag_iob2_with_docstart(nlp, tmp_path):
    path = tmp_path / "test.txt"
    path.write_text("-DOCSTART-\tO\n\nBill\tB-per\nGates\tI-per\nvisited\tO\nNew\tB-loc\nYork\tI-loc\n\nHi\tO\n", encoding="utf8")
    docs = list(read_conll(nlp, path))
    assert [d.text for d in docs] == ["Bill Gates visited New York", "Hi"]
    assert ents(docs[0]) == [("Bill Gates", "per"), ("New York", "loc")]
    assert [(e.text, e.label_) for e in docs[0].ents] == ents(docs[0])


def test_conll_tag_token_order_as_in_the_mit_corpora(nlp, tmp_path):
    path = tmp_path / "mit.txt"
    path.write_text("O\tany\nB-GENRE\tromantic\nI-GENRE\tcomedy\n", encoding="utf8")
    (doc,) = read_conll(nlp, path, columns="tag-token")
    assert ents(doc) == [("romantic comedy", "GENRE")]


def test_conll_iob1_and_extra_columns(nlp, tmp_path):
    # IOB1: I- opens a span; B- only separates two adjacent spans of one type. Middle columns ignored.
    path = tmp_path / "iob1.txt"
    path.write_text("EU NNP B-NP I-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP I-MISC\nBritish JJ I-NP B-MISC\nlamb NN I-NP O\n", encoding="utf8")
    (doc,) = read_conll(nlp, path)
    assert ents(doc) == [("EU", "ORG"), ("German", "MISC"), ("British", "MISC")]


def test_conll_malformed_line_names_file_and_line(nlp, tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("Bill\tB-per\nGates\n", encoding="utf8")
    with pytest.raises(ReaderError, match=r"bad\.txt:2:"):
        list(read_conll(nlp, path))
    path.write_text("Bill\tB-per\nGates\tX-per\n", encoding="utf8")
    with pytest.raises(ReaderError, match=r"bad\.txt:2: 'X-per' is not a BIO tag"):
        list(read_conll(nlp, path))


def test_instructuie_json(nlp, tmp_path):
    path = tmp_path / "test.json"
    sentence = "ELRA organizes LREC ."
    path.write_text(json.dumps([{"sentence": sentence, "entities": [
        {"name": "ELRA", "type": "organization", "pos": [0, 4]},
        {"name": "LREC", "type": "conference", "pos": [15, 19]}]}]), encoding="utf8")
    (doc,) = read_instructuie(nlp, path)
    assert ents(doc) == [("ELRA", "organization"), ("LREC", "conference")]


def test_instructuie_bad_offsets_are_reported(nlp, tmp_path):
    path = tmp_path / "test.json"
    path.write_text(json.dumps([{"sentence": "ok", "entities": []}, {"sentence": "x", "entities": [{"type": "t", "pos": [0, 9]}]}]))
    with pytest.raises(ReaderError, match=r"test\.json:1: span \[0, 9\) is outside"):
        list(read_instructuie(nlp, path))


def _conversation(text, question_type, answer):
    return {"id": "x", "conversations": [
        {"from": "human", "value": f"Text: {text}"}, {"from": "gpt", "value": "I've read this text."},
        {"from": "human", "value": f"What describes {question_type} in the text?"}, {"from": "gpt", "value": answer}]}


def test_uniner_conversations_group_queries_per_passage_and_keep_raw_answers(nlp, tmp_path):
    path = tmp_path / "CrossNER_AI.json"
    text = "Hinton works at Google ."
    records = [_conversation(text, "person", '["Hinton"]'), _conversation(text, "organization", '["Google"]'),
               _conversation(text, "program language", "[]"), _conversation("Other text .", "person", "[]")]
    path.write_text(json.dumps(records), encoding="utf8")
    docs = list(read_uniner_conversations(nlp, path))
    assert [d.text for d in docs] == [text, "Other text ."]
    assert docs[0].user_data[ANSWERS_KEY] == {"person": '["Hinton"]', "organization": '["Google"]', "program language": "[]"}
    assert ents(docs[0]) == [("Hinton", "person"), ("Google", "organization")]
    assert gold_answers(docs[0], ["person"]) == {"person": '["Hinton"]'}


def test_uniner_conversations_malformed_record(nlp, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"id": "x", "conversations": [{"from": "human", "value": "Hello"}]}]))
    with pytest.raises(ReaderError, match=r"bad\.json:0: record 0 is malformed"):
        list(read_uniner_conversations(nlp, path))


def test_jsonl_with_character_spans(nlp, tmp_path):
    path = tmp_path / "data.jsonl"
    lines = [{"text": "Ada met Bob", "spans": [{"start": 0, "end": 3, "label": "person"}]},
             {"text": "Bob", "entities": [[0, 3, "person"]]}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n{not json\n", encoding="utf8")
    reader = read_jsonl(nlp, path)
    assert ents(next(reader)) == [("Ada", "person")]
    assert ents(next(reader)) == [("Bob", "person")]
    with pytest.raises(ReaderError, match=r"data\.jsonl:4: malformed line"):
        next(reader)


def test_docbin_from_ents_or_a_spans_key(nlp, tmp_path):
    doc = nlp.make_doc("Ada met Bob in Paris")
    doc.ents = [Span(doc, 0, 1, "PER"), Span(doc, 2, 3, "PER")]
    doc.spans["sc"] = [Span(doc, 4, 5, "LOC"), Span(doc, 0, 3, "GROUP")]
    path = tmp_path / "gold.spacy"
    DocBin(docs=[doc], store_user_data=True).to_disk(path)
    (from_ents,) = read_docbin(nlp, path)
    assert ents(from_ents) == [("Ada", "PER"), ("Bob", "PER")]
    (from_spans,) = read_docbin(nlp, path, spans_key="sc")
    assert ents(from_spans) == [("Ada met Bob", "GROUP"), ("Paris", "LOC")]


def test_docbin_unreadable_file(nlp, tmp_path):
    path = tmp_path / "broken.spacy"
    path.write_bytes(b"not a docbin")
    with pytest.raises(ReaderError, match="broken.spacy"):
        list(read_docbin(nlp, path))


def test_gold_answers_from_spans_are_json_lists_in_document_order(nlp, tmp_path):
    doc = Doc(nlp.vocab, words=["Bob", "and", "Ada", "and", "Bob"])
    doc.spans[GOLD_KEY] = [Span(doc, 2, 3, "person"), Span(doc, 0, 1, "person"), Span(doc, 4, 5, "person")]
    assert gold_answers(doc, ["person", "city"]) == {"person": '["Bob", "Ada", "Bob"]', "city": "[]"}
