"""``gold`` asks only what a source can vouch for: every type of a complete schema, the present types of a
partial one; several names of one type vary across passages; a set's own limit caps its passages."""

import json
from collections import Counter
from pathlib import Path

import pytest
import spacy

from spacy_universalner.conversations import read_conversation
from spacy_universalner.distill.gold import gold_conversations, run_gold
from spacy_universalner.eval.benchmarks import Benchmark, load_benchmarks
from spacy_universalner.eval.readers import GOLD_KEY

SENTENCES = ["Ada B-PER\nvisited O\nIBM B-CORP\n", "Bob B-PER\nslept O\n", "The O\nend O\n"]

SETS = """
[paths]
data = "{data}"

[benchmarks]

[benchmarks.{name}]
title = "{name}"
{options}

[benchmarks.{name}.reader]
@uniner_readers = "spacy_universalner.conll.v1"
path = "${{paths.data}}/train.txt"

[benchmarks.{name}.types]
PER = "person"
CORP = ["company", "corporation", "firm"]
"""


def write_sets(tmp_path, options: str = "", name: str = "toy", sentences=SENTENCES):
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "train.txt").write_text("\n".join(sentences), encoding="utf8")
    path = tmp_path / f"{name}.cfg"
    path.write_text(SETS.format(data=tmp_path / "data", name=name, options=options), encoding="utf8")
    return path


def questions(record):
    return dict(read_conversation(record)[1])


def test_a_set_that_does_not_state_completeness_is_asked_everything_and_carries_no_flag(tmp_path):
    records = gold_conversations(write_sets(tmp_path))["toy"]
    assert all("complete" not in r for r in records)  # the records of sets written before the flag stay as they were
    assert [len(questions(r)) for r in records] == [2, 2, 2]
    assert questions(records[1])["person"] == '["Bob"]' and "[]" in questions(records[1]).values()


def test_a_complete_set_asks_absent_types_as_true_negatives(tmp_path):
    records = gold_conversations(write_sets(tmp_path, "complete = true"))["toy"]
    assert [r["complete"] for r in records] == [True, True, True]
    # "The end": no mention, and both types of the schema asked, both true negatives.
    assert list(questions(records[2]).values()) == ["[]", "[]"]


def test_a_partial_set_asks_only_the_types_its_passage_has(tmp_path):
    records = gold_conversations(write_sets(tmp_path, "complete = false"))["toy"]
    # "The end ." has nothing the source vouches for: no record; Bob's passage is asked "person" only.
    assert [read_conversation(r)[0] for r in records] == ["Ada visited IBM", "Bob slept"]
    assert questions(records[1]) == {"person": '["Bob"]'}
    assert all(r["complete"] is False for r in records)
    assert all("[]" not in questions(r).values() for r in records)


def test_several_names_for_one_type_vary_by_passage_and_are_seeded(tmp_path):
    sentences = [f"Co{i} B-CORP\n" for i in range(60)]
    config = write_sets(tmp_path, sentences=sentences)
    asked = [next(n for n in questions(r) if n != "person") for r in gold_conversations(config, seed=1)["toy"]]
    assert set(Counter(asked)) == {"company", "corporation", "firm"}
    again = [next(n for n in questions(r) if n != "person") for r in gold_conversations(config, seed=1)["toy"]]
    assert asked == again
    assert asked != [next(n for n in questions(r) if n != "person") for r in gold_conversations(config, seed=2)["toy"]]


def test_evaluation_asks_the_canonical_name_of_a_listed_type(tmp_path):
    bench = load_benchmarks(write_sets(tmp_path))["toy"]
    assert bench.queries == ["person", "company"]
    assert bench.names == {"person": ["person"], "company": ["company", "corporation", "firm"]}
    (ada, *_) = bench.load(spacy.blank("en"))
    assert [(s.text, s.label_) for s in ada.spans[GOLD_KEY]] == [("Ada", "person"), ("IBM", "company")]


def test_a_sets_own_limit_replaces_the_callers(tmp_path):
    config = write_sets(tmp_path, "limit = 1")
    assert len(gold_conversations(config, limit=3)["toy"]) == 1
    assert len(gold_conversations(write_sets(tmp_path, "limit = 0", name="all"), limit=1)["all"]) == 3  # 0: all
    counts = run_gold(config, tmp_path / "gold.json")
    assert counts == {"toy": 1} and len(json.loads((tmp_path / "gold.json").read_text())) == 1


def test_an_empty_list_of_names_is_refused():
    with pytest.raises(ValueError, match="types.CORP must be"):
        Benchmark(name="bad", reader=lambda nlp: iter(()), types={"CORP": []})


# ---------------------------------------------------------------------------- the shipped data configs
CONFIGS = Path(__file__).resolve().parents[1] / "spacy_universalner" / "configs"


def _sections(name: str) -> dict:
    from confection import Config

    return Config().from_disk(CONFIGS / name).interpolate()["benchmarks"]


def test_mini_sources_never_read_a_zero_shot_test_set_and_state_completeness():
    sections = _sections("mini_sources.cfg")
    text = json.dumps(sections).lower()
    assert "crossner" not in text and "mit_" not in text  # the zero-shot test sets
    assert all(isinstance(section.get("complete"), bool) for section in sections.values())
    assert load_benchmarks(CONFIGS / "mini_sources.cfg", ["train"]).keys() == sections.keys()


def test_mini_dev_holds_dev_splits_of_train_sets_asking_the_same_types():
    train, dev = _sections("mini_sources.cfg"), _sections("mini_dev.cfg")
    assert set(dev) <= set(train) and {"conll2003", "multiconer2", "scirex", "snips_playmusic"} <= set(dev)
    for name, section in dev.items():
        assert section["types"] == train[name]["types"], name
        assert section["group"] == "dev" and section.get("complete") == train[name]["complete"], name
        if section["reader"].get("split"):  # held out of the very file the train entry reads
            assert (section["reader"]["split"], train[name]["reader"]["split"]) == ("dev", "train")
            assert section["reader"]["reader"] == train[name]["reader"]["reader"]
        else:
            train_paths = train[name]["reader"]["path"]
            assert section["reader"]["path"] not in ([train_paths] if isinstance(train_paths, str) else train_paths)


def test_evaluation_asks_a_partial_set_only_the_types_each_passage_has(tmp_path):
    nlp = spacy.blank("en")
    partial = load_benchmarks(write_sets(tmp_path, "complete = false", name="silver"))["silver"]
    complete = load_benchmarks(write_sets(tmp_path, "complete = true", name="human"))["human"]
    ada, bob, end = partial.load(nlp)
    assert [partial.queries_for(d) for d in (ada, bob, end)] == [["person", "company"], ["person"], []]
    assert complete.queries_for(end) == ["person", "company"]


def test_a_broader_query_is_answered_with_the_mentions_of_the_narrower_one(tmp_path):
    # MultiCoNER labels a company "company" only; asked "organization", its companies must be answers, not
    # unlabelled spans that would teach "a company is not an organization".
    sentences = ["IBM B-CORP\nand O\nUNICEF B-ORG\n", "Ada B-PER\nslept O\n"]
    config = write_sets(tmp_path, "complete = false", sentences=sentences)
    text = config.read_text(encoding="utf8").replace('PER = "person"', 'PER = "person"\nORG = "organization"')
    config.write_text(text + '\n[benchmarks.toy.broader]\ncompany = ["organization"]\n', encoding="utf8")
    records = gold_conversations(config)["toy"]
    asked = questions(records[0])
    assert json.loads(asked["organization"]) == ["UNICEF", "IBM"]
    assert json.loads(next(v for k, v in asked.items() if k in ("company", "corporation", "firm"))) == ["IBM"]
    # A partial passage without a company is not asked "organization" on its account.
    assert questions(records[1]) == {"person": '["Ada"]'}


def test_a_broader_name_must_be_a_query_of_the_set(tmp_path):
    config = write_sets(tmp_path)
    config.write_text(config.read_text(encoding="utf8") + '\n[benchmarks.toy.broader]\ncompany = ["organisation"]\n')
    with pytest.raises(ValueError, match="organisation"):
        load_benchmarks(config)
