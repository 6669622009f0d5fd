"""sample (raw text -> passages) and build (teacher answers -> UniNER conversations)."""

import json
import random
import time
from collections import Counter

from spacy_universalner.distill.build import FrequencySampler, build_conversations, normalize_type, run_build
from spacy_universalner.distill.sample import load_token_spans, run_sample, sample_passages, split_passages
from spacy_universalner.distill.tuples import parse_tuples
from spacy_universalner.parsing import MAX_ANSWER_CHARS

words = load_token_spans("whitespace")


# ---------------------------------------------------------------------------- sample
def test_passages_respect_the_token_limit_and_are_substrings():
    text = "One two three. Four five six seven. Eight nine. " + " ".join(f"w{i}" for i in range(25)) + "."
    passages = split_passages(text, words, max_tokens=10)
    assert all(len(p.split()) <= 10 for p in passages)
    assert all(p in text for p in passages)
    assert passages[0] == "One two three. Four five six seven. Eight nine."  # whole sentences packed
    assert " ".join(passages).split() == text.split()  # nothing lost


def test_duplicates_are_dropped_and_sampling_is_seeded(tmp_path):
    docs = ["Alpha beta.  Gamma delta.", "Alpha beta. Gamma delta.", "Epsilon zeta.", "Eta theta.", "Iota kappa."]
    records, stats = sample_passages(docs, words, n=100, max_tokens=2)
    texts = [r["text"] for r in records]
    assert stats.duplicates == 2 and len(texts) == len(set(texts)) == 5
    first, _ = sample_passages(docs, words, n=3, max_tokens=2, seed=7)
    again, _ = sample_passages(docs, words, n=3, max_tokens=2, seed=7)
    assert first == again and len(first) == 3
    assert len({r["id"] for r in records}) == 5


def test_sample_reads_text_files_folders_and_jsonl(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.txt").write_text("A plain text document. It has two sentences.")
    (tmp_path / "raw" / "b.jsonl").write_text(json.dumps({"body": "From JSON lines."}) + "\n")
    stats = run_sample(tmp_path / "raw", tmp_path / "out.jsonl", n=10, max_tokens=4, text_field="body")
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert stats.documents == 2 and set(records[0]) == {"id", "text"}
    assert [r["text"] for r in records] == ["A plain text document.", "It has two sentences.", "From JSON lines."]


def test_sample_counts_tokens_with_a_hugging_face_tokenizer(tiny_model_path):
    spans = load_token_spans(tiny_model_path)
    passages = split_passages("Bill Gates founded Microsoft in Albuquerque. " * 20, spans, max_tokens=16)
    assert all(len(spans(p)) <= 16 for p in passages) and len(passages) > 3
    long_sentence = "Researchers at the University of Cambridge published a paper on protein folding in Nature."
    pieces = split_passages(long_sentence, spans, max_tokens=12)
    assert len(pieces) > 1 and " ".join(pieces) == long_sentence  # cut between words, never inside one


# ---------------------------------------------------------------------------- teacher tuples
def test_teacher_tuples_are_parsed_robustly():
    assert parse_tuples('[("Bill Gates", "person"), ("Microsoft", "organization")]').pairs == [
        ("Bill Gates", "person"),
        ("Microsoft", "organization"),
    ]
    assert parse_tuples('Here you go: [["Paris", "city"]] Hope it helps').pairs == [("Paris", "city")]
    assert parse_tuples('[["Paris", "city"], ["x", null]]').method == "json"
    assert parse_tuples("[('McDonald\\'s', 'company')]").pairs == [("McDonald's", "company")]
    cut_off = parse_tuples('[("Ada", "person"), ("Alan Turing", "person"), ("Bletch')
    assert cut_off.method == "regex" and cut_off.pairs == [("Ada", "person"), ("Alan Turing", "person")]
    mixed = parse_tuples('[("Ada", "person"), "stray", ("a", "b", "c")]')
    assert mixed.pairs == [("Ada", "person")] and mixed.bad_items == 2
    assert parse_tuples("I found no entities.").method == "failed"
    assert parse_tuples("[]").ok and parse_tuples("[]").pairs == []


def test_huge_teacher_answers_are_read_by_the_linear_regex_not_evaluated():
    # 6 MB of tuples: ast.literal_eval took 16 s and 3 GB here; beyond 20,000 characters only the regex reads it.
    huge = "[" + '("Ada", "person"),' * 100_000 + "]"
    started = time.process_time()
    parsed = parse_tuples(huge)
    assert time.process_time() - started < 5  # CPU seconds
    # read up to the answer cap (65,536 characters, far past any real answer), as if cut by the token limit
    assert parsed.method == "regex" and parsed.pairs == [("Ada", "person")] * (
        MAX_ANSWER_CHARS // len('("Ada", "person"),')
    )
    assert parse_tuples("[" + "(1,2)," * 10**6 + "]").method == "failed"


# ---------------------------------------------------------------------------- build
def annotations(tmp_path, records):
    path = tmp_path / "annotations.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def answer(pairs):
    return "[" + ", ".join(f'("{m}", "{t}")' for m, t in pairs) + "]"


def test_build_filters_types_and_mentions_and_counts_what_it_drops(tmp_path):
    text = "Bill Gates founded Microsoft in Albuquerque."
    records = [
        {
            "id": "a",
            "text": text,
            "answer": answer(
                [
                    ("Bill Gates", " Person "),
                    ("Microsoft", "organization"),
                    ("Seattle", "location"),
                    ("Albuquerque", "MISC"),
                    ("Bill Gates", "person"),
                    ("1975", "NONE"),
                ]
            ),
        },
        {"id": "b", "text": "Nothing here.", "answer": "Sorry, I cannot help with that."},
        {"id": "c", "text": text, "answer": answer([("Microsoft", "company")])},  # duplicate passage
    ]
    data, stats = build_conversations(annotations(tmp_path, records), negatives=0)
    assert len(data) == 1
    turns = data[0]["conversations"]
    assert turns[:2] == [{"from": "human", "value": f"Text: {text}"}, {"from": "gpt", "value": "I've read this text."}]
    queries = dict(zip([t["value"] for t in turns[2::2]], [t["value"] for t in turns[3::2]]))
    assert queries == {
        "What describes person in the text?": '["Bill Gates"]',
        "What describes organization in the text?": '["Microsoft"]',
    }
    summary = stats.as_dict()
    assert summary["dropped"]["unparseable_answers"] == 1
    assert summary["dropped"]["mentions_not_in_passage"] == 1
    assert summary["dropped"]["mentions_of_dropped_types"] == 2
    assert summary["dropped"]["duplicate_mentions"] == 1
    assert summary["dropped"]["duplicate_passages"] == 1
    assert summary["mentions"] == 2 and summary["types"] == 2


def test_negatives_follow_type_frequency_and_exclude_positive_types():
    counts = Counter({"person": 900, "location": 90, "enzyme": 10})
    sampler = FrequencySampler(counts)
    rng = random.Random(0)
    drawn = Counter(sampler.sample(1, ["organization"], rng)[0] for _ in range(3000))
    assert drawn["person"] > 2500 and drawn["location"] > drawn["enzyme"]
    assert all(
        sampler.sample(2, ["person"], rng) in (["location", "enzyme"], ["enzyme", "location"]) for _ in range(20)
    )
    assert sampler.sample(5, ["person", "location", "enzyme"], rng) == []


def test_build_adds_negatives_shuffles_queries_and_saves_statistics(tmp_path):
    records = [
        {"id": str(i), "text": f"Ann{i} visited Rome.", "answer": answer([(f"Ann{i}", "person"), ("Rome", "city")])}
        for i in range(30)
    ] + [{"id": "x", "text": "Aspirin helps.", "answer": answer([("Aspirin", "drug")])}]
    stats_path = tmp_path / "stats.json"
    summary = run_build(
        annotations(tmp_path, records), tmp_path / "train.json", negatives=2, seed=1, stats_path=stats_path
    )
    data = json.loads((tmp_path / "train.json").read_text())
    assert json.loads(stats_path.read_text()) == json.loads(json.dumps(summary))
    # Passages with person and city have one type left to draw (drug); the drug passage gets two.
    assert summary["negatives"] == 30 + 2 and summary["queries_per_passage"] == round((60 + 1 + 32) / 31, 2)
    assert summary["top_types"][:2] == [["person", 30], ["city", 30]] or summary["top_types"][:2] == [
        ("person", 30),
        ("city", 30),
    ]
    drug = next(d for d in data if d["id"] == "x")["conversations"]
    negatives = {t["value"] for q, t in zip(drug[2::2], drug[3::2]) if t["value"] == "[]"}
    assert negatives == {"[]"} and sum(1 for t in drug[3::2] if t["value"] == "[]") == 2
    orders = {tuple(t["value"] for t in d["conversations"][2::2]) for d in data if d["id"] != "x"}
    assert len({o[0] for o in orders}) > 1  # query order differs between passages


def test_build_accepts_a_pile_ner_type_file_and_keeps_its_negatives(tmp_path):
    pile = [
        {
            "conversations": [
                {"from": "human", "value": "Text: Ada Lovelace wrote notes."},
                {"from": "gpt", "value": "I've read this text."},
                {"from": "human", "value": "What describes person in the text?"},
                {"from": "gpt", "value": '["Ada Lovelace"]'},
                {"from": "human", "value": "What describes programming language in the text?"},
                {"from": "gpt", "value": "[]"},
            ]
        }
    ]
    path = tmp_path / "pile-ner.json"
    path.write_text(json.dumps(pile))
    data, stats = build_conversations(path, negatives=1)
    turns = data[0]["conversations"]
    answers = dict(zip([t["value"] for t in turns[2::2]], [t["value"] for t in turns[3::2]]))
    assert answers == {
        "What describes person in the text?": '["Ada Lovelace"]',
        "What describes programming language in the text?": "[]",
    }


def test_type_normalisation():
    assert normalize_type("  Programming_Language. ") == "programming language"
    assert normalize_type('"Restaurant  Name"', lowercase=False) == "Restaurant Name"


def test_gold_records_keep_their_own_schema_negatives_and_never_get_drawn_ones(tmp_path):
    """A CoNLL sentence is asked its own absent types only: "drug" (a teacher type) is unknown there, not absent."""
    from spacy_universalner.conversations import make_conversation

    conll = make_conversation(
        "conll2003:0",
        "Ann visited Rome.",
        [("person", ["Ann"]), ("location", ["Rome"]), ("organization", []), ("date", [])],
    )
    conll["complete"] = True
    silver = make_conversation("multiconer2:0", "Bob joined Acme.", [("company", ["Acme"])])
    silver["complete"] = False
    teacher = {"id": "t", "text": "Aspirin helps Ann.", "answer": answer([("Aspirin", "drug"), ("Ann", "person")])}
    gold_path = tmp_path / "gold.json"
    gold_path.write_text(json.dumps([conll, silver]))
    data, stats = build_conversations([gold_path, annotations(tmp_path, [teacher])], negatives=1, seed=0)
    asked = {
        d["id"]: {q["value"]: a["value"] for q, a in zip(d["conversations"][2::2], d["conversations"][3::2])}
        for d in data
    }
    assert {q for q, a in asked["conll2003:0"].items() if a == "[]"} == {
        "What describes organization in the text?",
        "What describes date in the text?",
    }  # all kept, none drawn
    assert asked["multiconer2:0"] == {"What describes company in the text?": '["Acme"]'}
    assert [d.get("complete") for d in data] == [True, False, None]  # the flag goes on to train-span
    assert stats.negatives == 2 + 0 + 0  # the teacher passage has no other teacher type to draw


def test_gold_records_marked_drawn_get_frequency_drawn_negatives_and_keep_the_mark(tmp_path):
    from spacy_universalner.conversations import make_conversation

    pile = make_conversation("pile_ner_391:0", "Ann visited Rome.", [("person", ["Ann"])])
    pile.update({"complete": False, "negatives": "drawn"})
    other = make_conversation("pile_ner_391:1", "Rome is old.", [("city", ["Rome"])])
    other.update({"complete": False, "negatives": "drawn"})
    gold_path = tmp_path / "gold.json"
    gold_path.write_text(json.dumps([pile, other]))
    data, stats = build_conversations(gold_path, negatives=1, seed=0)
    first = data[0]["conversations"]
    assert {t["value"] for t in first[2::2]} == {
        "What describes person in the text?",
        "What describes city in the text?",
    }
    assert [(d["complete"], d["negatives"]) for d in data] == [(False, "drawn")] * 2 and stats.negatives == 2
