"""Readers turn each benchmark format into Docs with gold spans; bad lines name file and line."""

import json

import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span

from spacy_universalner.eval.readers import (
    ANSWERS_KEY,
    GOLD_KEY,
    ID_KEY,
    ReaderError,
    gold_answers,
    holdout,
    make_conll_reader,
    read_conll,
    read_docbin,
    read_instructuie,
    read_jsonl,
    read_scirex,
    read_slimer_sentences,
    read_snips,
    read_uniner_conversations,
)


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def ents(doc):
    return [(s.text, s.label_) for s in doc.spans[GOLD_KEY]]


def test_conll_token_tag_iob2_with_docstart(nlp, tmp_path):
    path = tmp_path / "test.txt"
    path.write_text(
        "-DOCSTART-\tO\n\nBill\tB-per\nGates\tI-per\nvisited\tO\nNew\tB-loc\nYork\tI-loc\n\nHi\tO\n", encoding="utf8"
    )
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
    path.write_text(
        "EU NNP B-NP I-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP I-MISC\nBritish JJ I-NP B-MISC\nlamb NN I-NP O\n",
        encoding="utf8",
    )
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
    path.write_text(
        json.dumps(
            [
                {
                    "sentence": sentence,
                    "entities": [
                        {"name": "ELRA", "type": "organization", "pos": [0, 4]},
                        {"name": "LREC", "type": "conference", "pos": [15, 19]},
                    ],
                }
            ]
        ),
        encoding="utf8",
    )
    (doc,) = read_instructuie(nlp, path)
    assert ents(doc) == [("ELRA", "organization"), ("LREC", "conference")]


def test_instructuie_bad_offsets_are_reported(nlp, tmp_path):
    path = tmp_path / "test.json"
    path.write_text(
        json.dumps([{"sentence": "ok", "entities": []}, {"sentence": "x", "entities": [{"type": "t", "pos": [0, 9]}]}])
    )
    with pytest.raises(ReaderError, match=r"test\.json:1: span \[0, 9\) is outside"):
        list(read_instructuie(nlp, path))


def _conversation(text, question_type, answer):
    return {
        "id": "x",
        "conversations": [
            {"from": "human", "value": f"Text: {text}"},
            {"from": "gpt", "value": "I've read this text."},
            {"from": "human", "value": f"What describes {question_type} in the text?"},
            {"from": "gpt", "value": answer},
        ],
    }


def test_uniner_conversations_group_queries_per_passage_and_keep_raw_answers(nlp, tmp_path):
    path = tmp_path / "CrossNER_AI.json"
    text = "Hinton works at Google ."
    records = [
        _conversation(text, "person", '["Hinton"]'),
        _conversation(text, "organization", '["Google"]'),
        _conversation(text, "program language", "[]"),
        _conversation("Other text .", "person", "[]"),
    ]
    path.write_text(json.dumps(records), encoding="utf8")
    docs = list(read_uniner_conversations(nlp, path))
    assert [d.text for d in docs] == [text, "Other text ."]
    assert docs[0].user_data[ANSWERS_KEY] == {
        "person": '["Hinton"]',
        "organization": '["Google"]',
        "program language": "[]",
    }
    assert ents(docs[0]) == [("Hinton", "person"), ("Google", "organization")]
    assert gold_answers(docs[0], ["person"]) == {"person": '["Hinton"]'}


def test_uniner_conversations_malformed_record(nlp, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"id": "x", "conversations": [{"from": "human", "value": "Hello"}]}]))
    with pytest.raises(ReaderError, match=r"bad\.json:0: record 0 is malformed"):
        list(read_uniner_conversations(nlp, path))


def test_jsonl_with_character_spans(nlp, tmp_path):
    path = tmp_path / "data.jsonl"
    lines = [
        {"text": "Ada met Bob", "spans": [{"start": 0, "end": 3, "label": "person"}]},
        {"text": "Bob", "entities": [[0, 3, "person"]]},
    ]
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


# ---------------------------------------------------------------------------- the open-type training sources
MULTICONER = """
# id 11111111-aaaa\tdomain=en
eli _ _ B-OtherPER
lilly _ _ I-OtherPER
founded _ _ O
eli _ _ B-PublicCorp
lilly _ _ I-PublicCorp
and _ _ I-PublicCorp
company _ _ I-PublicCorp


# id 22222222-bbbb\tdomain=en
# _ _ O
one _ _ B-MusicalWork

# id 33333333-cccc\tdomain=en
paris _ _ B-HumanSettlement
"""


def test_conll_sentence_headers_give_ids_and_listed_ids_are_dropped(nlp, tmp_path):
    # MultiCoNER: a `# id <uuid>\tdomain=..` header before each sentence; a token "#" is still a token.
    path = tmp_path / "en-train.conll"
    path.write_text(MULTICONER, encoding="utf8")
    docs = list(read_conll(nlp, path, comment_prefix="# id ", drop_ids=["33333333-cccc"]))
    assert [(d.user_data[ID_KEY], d.text) for d in docs] == [
        ("11111111-aaaa", "eli lilly founded eli lilly and company"),
        ("22222222-bbbb", "# one"),
    ]
    assert ents(docs[0]) == [("eli lilly", "OtherPER"), ("eli lilly and company", "PublicCorp")]
    with pytest.raises(ReaderError, match="'domain=en' is not a BIO tag"):  # headers must be declared
        list(read_conll(nlp, path))


STACKOVERFLOW = (
    "Question_ID\tO\tQuestion_ID\tO\n:\tO\t:\tO\n37985879\tO\t37985879\tO\n\t\n"
    "I\tO\tI\tO\nuse\tO\tuse\tO\nPython\tB-Language\tPython\tB-Code_Block\n\t\n"
    "CODE_BLOCK\tB-Code_Block\tCODE_BLOCK\tB-Code_Block\n:\tI-Code_Block\t:\tI-Code_Block\n"
    "Q_1\tI-Code_Block\tQ_1\tI-Code_Block\n"
)


def test_conll_tag_column_and_skipped_sentences_as_in_stackoverflow_ner(nlp, tmp_path):
    # Four tab-separated columns, the human label in the second; metadata and code placeholders skipped.
    path = tmp_path / "train.txt"
    path.write_text(STACKOVERFLOW, encoding="utf8")
    docs = list(read_conll(nlp, path, tag_column=1, skip_pattern="^(Question_ID|CODE_BLOCK) : "))
    assert [d.text for d in docs] == ["I use Python"]
    assert ents(docs[0]) == [("Python", "Language")]
    assert len(list(read_conll(nlp, path, tag_column=1))) == 3


def test_conll_reader_reads_several_files_as_one_set(nlp, tmp_path):
    (tmp_path / "a.txt").write_text("Ada B-per\n", encoding="utf8")
    (tmp_path / "b.txt").write_text("Bob B-per\n", encoding="utf8")
    reader = make_conll_reader([str(tmp_path / "a.txt"), str(tmp_path / "b.txt")])
    assert [ents(d) for d in reader(nlp)] == [[("Ada", "per")], [("Bob", "per")]]


def _scirex_paper(words, sentences, ner):
    return {"doc_id": "p", "words": words, "sentences": sentences, "ner": ner, "coref": {}}


def test_scirex_one_doc_per_sentence_with_sentence_offsets(nlp, tmp_path):
    words = "We train ResNet on ImageNet . Accuracy rises on CIFAR - 10 and more words here".split()
    # [0, 6) and [6, 16); the last mention crosses the sentence end and is dropped.
    paper = _scirex_paper(
        words,
        [[0, 6], [6, 16]],
        [[2, 3, "Method"], [4, 5, "Material"], [6, 7, "Metric"], [9, 12, "Material"], [15, 17, "Task"]],
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "p.json").write_text(json.dumps(paper), encoding="utf8")
    docs = list(read_scirex(nlp, tmp_path / "docs"))
    assert [d.text for d in docs] == [
        "We train ResNet on ImageNet .",
        "Accuracy rises on CIFAR - 10 and more words here",
    ]
    assert ents(docs[0]) == [("ResNet", "Method"), ("ImageNet", "Material")]
    assert ents(docs[1]) == [("Accuracy", "Metric"), ("CIFAR - 10", "Material")]
    assert [d.text for d in read_scirex(nlp, tmp_path / "docs", max_words=6)] == ["We train ResNet on ImageNet ."]
    (tmp_path / "docs" / "q.json").write_text(json.dumps({"words": ["x"]}), encoding="utf8")
    with pytest.raises(ReaderError, match=r"q\.json: not a SciREX paper"):
        list(read_scirex(nlp, tmp_path / "docs"))


def test_snips_utterances_are_joined_parts_and_bad_bytes_do_not_stop_reading(nlp, tmp_path):
    utterances = [
        {
            "data": [
                {"text": "play "},
                {"text": "Sister Ray ", "entity": "track"},
                {"text": "by "},
                {"text": "Lou Reed", "entity": "artist"},
                {"text": " on "},
                {"text": "Spotify", "entity": "service"},
            ]
        },
        {"data": [{"text": " book "}, {"text": "Caf\u00e9 Roma", "entity": "restaurant_name"}, {"text": "\n"}]},
    ]
    path = tmp_path / "train_PlayMusic_full.json"
    raw = json.dumps({"PlayMusic": utterances}, ensure_ascii=False).encode("utf8").replace("Roma".encode(), b"R\xf6ma")
    path.write_bytes(raw)  # a Latin-1 byte inside UTF-8, as in the SNIPS files
    first, second = read_snips(nlp, path)
    assert first.text == "play Sister Ray by Lou Reed on Spotify"
    assert ents(first) == [("Sister Ray", "track"), ("Lou Reed", "artist"), ("Spotify", "service")]
    assert second.text == "book Caf\u00e9 R\ufffdma"
    assert ents(second) == [("Caf\u00e9 R\ufffdma", "restaurant_name")]


def test_slimer_sentences_label_every_occurrence_of_the_one_named_type(nlp, tmp_path):
    path = tmp_path / "sentences_per_ne_type.json"
    data = {
        "company": [
            {
                "sentence": "Apple sued Samsung , and Apple won .",
                "target_words_in_it": ["Apple"],
                "occurrences_count": 2,
            }
        ],
        "person": [{"sentence": "Tim Cook runs Apple .", "target_words_in_it": ["Tim Cook"], "occurrences_count": 1}],
    }
    path.write_text(json.dumps(data), encoding="utf8")
    company, person = read_slimer_sentences(nlp, path)
    assert ents(company) == [("Apple", "company"), ("Apple", "company")]  # Samsung: unlabelled, not absent
    assert ents(person) == [("Tim Cook", "person")]  # Apple: unlabelled here


def test_holdout_splits_any_reader_into_disjoint_train_and_dev(nlp, tmp_path):
    path = tmp_path / "many.txt"
    path.write_text("".join(f"w{i} O\n\n" for i in range(25)), encoding="utf8")
    reader = make_conll_reader(str(path))
    dev = [d.text for d in holdout(reader, split="dev", every=10)(nlp)]
    train = [d.text for d in holdout(reader, split="train", every=10)(nlp)]
    assert dev == ["w0", "w10", "w20"]
    assert len(train) == 22 and not set(train) & set(dev)
    assert train == [d.text for d in holdout(reader, split="train", every=10)(nlp)]  # deterministic
    with pytest.raises(ValueError, match="split must be"):
        holdout(reader, split="test")
