"""UniNER as a spacy-llm task, as a spacy-llm user meets it: a config with the ``llm`` component,
the task ``spacy_universalner.UniNER.v1`` and a model the user registered (here: a callable that
answers UniNER prompts by keywords). Nothing touches the network."""

import re
import warnings
from typing import Dict, Iterable, List, Optional

import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry as spacy_registry
from spacy_llm.registry import registry as llm_registry
from spacy_llm.util import assemble_from_config
from thinc.api import Config

from spacy_universalner.prompt import UniNERTemplate
from spacy_universalner.testing import KeywordLLMModel

TEXT = "Bill Gates and Paul Allen founded Microsoft in Albuquerque."
KNOWN = {"person": ["Bill Gates", "Paul Allen"], "organization": ["Microsoft"], "location": ["Albuquerque"]}


@llm_registry.llm_models("test_llm.Keywords.v1")
def make_keyword_model(
    words: Dict[str, List[str]] = KNOWN,
    raw: Optional[Dict[str, str]] = None,
    context_length: Optional[int] = None,
    forbidden: bool = False,
) -> KeywordLLMModel:
    """A user's spacy-llm model: the mentions of ``words`` of the asked type found in the passage, or ``raw[type]``
    whatever the passage; with ``forbidden`` any answer is an error. It records every call."""
    return KeywordLLMModel(words, raw, context_length, forbidden)


CONFIG = """
[nlp]
lang = "en"
pipeline = ["llm"]

[components]

[components.llm]
factory = "llm"

[components.llm.task]
@llm_tasks = "spacy_universalner.UniNER.v1"
labels = ["person", "organization", "location"]

[components.llm.model]
@llm_models = "test_llm.Keywords.v1"
context_length = 2048
"""


def assemble(overrides: Optional[Dict] = None) -> spacy.Language:
    """Build the pipeline the way ``spacy assemble`` / ``spacy_llm.util.assemble`` do."""
    config = Config().from_str(CONFIG, overrides=overrides or {})
    return assemble_from_config(config)


def ents(doc: Doc):
    return [(e.text, e.label_) for e in doc.ents]


def model_of(nlp) -> KeywordLLMModel:
    return nlp.get_pipe("llm")._model


def test_a_user_model_in_a_config_yields_the_expected_ents():
    nlp = assemble()
    doc = nlp(TEXT)
    assert ents(doc) == [
        ("Bill Gates", "person"),
        ("Paul Allen", "person"),
        ("Microsoft", "organization"),
        ("Albuquerque", "location"),
    ]
    assert [(s.text, s.label_) for s in doc.spans["uniner"]] == ents(doc)


def test_each_label_is_one_exact_uniner_prompt_and_answers_are_kept_on_the_doc():
    nlp = assemble()
    doc = nlp(TEXT)
    (call,) = model_of(nlp).calls
    template = UniNERTemplate()
    assert call == [[template.prompt(TEXT, label) for label in ("person", "organization", "location")]]
    assert doc._.uniner_responses[0] == {
        "label": "person",
        "query": "person",
        "chunk": 0,
        "response": '["Bill Gates", "Paul Allen"]',
    }
    assert doc._.uniner_unaligned == []


def test_the_task_and_universal_ner_turn_the_same_answers_into_the_same_spans():
    # Raw answers with a hallucination, a case mismatch, single quotes and an overlap.
    raw = {
        "person": "['bill gates', 'Nobody']",
        "organization": '["Microsoft", "Microsoft in Albuquerque"]',
        "location": '["Albuquerque"]',
    }
    llm_nlp = assemble({"components.llm.model.raw": raw, "components.llm.task.overlap_policy": "label_order"})
    pipe_nlp = spacy.blank("en")
    pipe_nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["person", "organization", "location"],
            "overlap_policy": "label_order",
            "model": {"@uniner_backends": "spacy_universalner.testing.Keywords.v1", "raw": raw},
        },
    )
    via_llm, via_pipe = llm_nlp(TEXT), pipe_nlp(TEXT)
    assert ents(via_llm) == ents(via_pipe) == [("Bill Gates", "person"), ("Microsoft in Albuquerque", "organization")]
    assert [(s.text, s.label_) for s in via_llm.spans["uniner"]] == [
        (s.text, s.label_) for s in via_pipe.spans["uniner"]
    ]
    assert (
        via_llm._.uniner_unaligned == via_pipe._.uniner_unaligned == [{"label": "person", "text": "Nobody", "chunk": 0}]
    )


def test_labels_as_dict_ask_the_query_and_label_the_span():
    nlp = assemble({"components.llm.task.labels": {"PER": "person", "ORG": "organization"}})
    assert nlp.get_pipe("llm").labels == ("PER", "ORG")
    assert ents(nlp(TEXT)) == [("Bill Gates", "PER"), ("Paul Allen", "PER"), ("Microsoft", "ORG")]


def test_labels_as_a_comma_separated_string_like_other_spacy_llm_tasks():
    nlp = assemble({"components.llm.task.labels": "person, location"})
    assert nlp.get_pipe("llm").labels == ("person", "location")


def test_without_labels_the_error_says_where_to_set_them():
    nlp = assemble({"components.llm.task.labels": []})
    with pytest.raises(ValueError, match=r"labels"):
        nlp(TEXT)


def test_labels_come_from_initialization_examples_when_none_are_configured():
    config = Config().from_str(CONFIG, overrides={"components.llm.task.labels": []})
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    gold = Doc(
        nlp.vocab, words=["Bill", "Gates", "founded", "Microsoft"], ents=["B-person", "I-person", "O", "B-organization"]
    )
    nlp.initialize(lambda: [Example(nlp.make_doc(gold.text), gold)])
    assert nlp.get_pipe("llm").labels == ("person", "organization")


def test_a_doc_longer_than_the_model_context_is_sharded_and_keeps_its_text():
    filler = "The weather was mild and nobody said anything of note that day ."
    sentences = [
        f"Bill Gates met people in Seattle . {filler}",
        f"{filler} Later Microsoft moved offices .",
        f"{filler} {filler} Paul Allen bought a team in Portland .",
    ]
    text = " ".join(sentences * 2)
    known = {"person": ["Bill Gates", "Paul Allen"], "organization": ["Microsoft"], "location": ["Seattle", "Portland"]}
    nlp = assemble({"components.llm.model.context_length": 80, "components.llm.model.words": known})
    doc = nlp(text)
    (call,) = model_of(nlp).calls
    prompts = call[0]
    n_labels = 3
    n_shards = len(prompts) // n_labels
    assert n_shards > 1 and len(prompts) == n_shards * n_labels
    # Every prompt fits: spacy-llm's default estimate (whitespace words) x 1.1 buffer.
    assert all(len(prompt.split()) * 1.1 <= 80 for prompt in prompts)
    assert doc.text == text and len(doc) == len(nlp.make_doc(text))
    expected = sorted(
        (m.start(), mention, label)
        for label, mentions in known.items()
        for mention in mentions
        for m in re.finditer(re.escape(mention), text)
    )
    assert [(e.start_char, e.text, e.label_) for e in doc.ents] == expected
    assert {r["chunk"] for r in doc._.uniner_responses} == set(range(n_shards))


def test_a_mention_is_placed_only_in_the_shard_whose_answer_named_it():
    text = ("word " * 60) + "Microsoft is here."
    nlp = spacy.blank("en")
    # Every shard's answer claims "Microsoft", which occurs in the last shard only.
    model = {"@llm_models": "test_llm.Keywords.v1", "context_length": 50, "raw": {"organization": '["Microsoft"]'}}
    nlp.add_pipe(
        "llm",
        config={"task": {"@llm_tasks": "spacy_universalner.UniNER.v1", "labels": ["organization"]}, "model": model},
    )
    doc = nlp(text)
    assert ents(doc) == [("Microsoft", "organization")]
    n_shards = len(doc._.uniner_responses)
    assert n_shards > 1
    assert [u["chunk"] for u in doc._.uniner_unaligned] == list(range(n_shards - 1))


def test_a_model_that_skips_prompts_is_an_error_not_shifted_labels():
    class Skipping(KeywordLLMModel):
        def __call__(self, prompts):
            return [["[]"] for _ in prompts]  # one answer per Doc, however many prompts it had

    nlp = assemble()
    nlp.get_pipe("llm")._model = Skipping()
    with pytest.raises(ValueError, match=r"Expected 3 responses"):
        nlp(TEXT)


def test_an_empty_doc_asks_nothing_and_comes_back():
    nlp = assemble()
    docs = list(nlp.pipe(["", "   ", TEXT]))
    assert [len(d.ents) for d in docs] == [0, 0, 4]
    assert [len(p) for p in model_of(nlp).calls[0]] == [0, 0, 3]


def test_labels_survive_a_disk_round_trip(tmp_path):
    nlp = assemble()
    nlp.get_pipe("llm").add_label("CITY", "city")
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("llm").labels == ("person", "organization", "location", "CITY")
    assert loaded.get_pipe("llm").task.label_queries["CITY"] == "city"
    assert ents(loaded(TEXT)) == ents(assemble()(TEXT))
    fresh = assemble()
    fresh.get_pipe("llm").from_bytes(nlp.get_pipe("llm").to_bytes())
    assert fresh.get_pipe("llm").labels == loaded.get_pipe("llm").labels


def test_spacy_llm_cache_replays_docs_without_calling_the_model(tmp_path):
    cache = {
        "components.llm.cache": {
            "@llm_misc": "spacy.BatchCache.v1",
            "path": str(tmp_path / "cache"),
            "batch_size": 1,
            "max_batches_in_mem": 4,
        }
    }
    first = assemble(cache)
    before = first(TEXT)
    assert len(model_of(first).calls) == 1
    assert (
        (tmp_path / "cache" / "prompt_template.txt")
        .read_text()
        .startswith(UniNERTemplate().prompt("{text}", "{label}"))
    )
    replay = assemble({**cache, "components.llm.model.forbidden": True})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same prompt template: no "template changed" warning
        after = replay(TEXT)
    assert ents(after) == ents(before)
    assert list(after._.uniner_responses) == list(before._.uniner_responses)


def test_the_scorer_reports_entity_prf_through_nlp_evaluate():
    nlp = assemble({"components.llm.model.words": {"person": ["Bill Gates"], "organization": ["Albuquerque"]}})
    gold = nlp.make_doc(TEXT)
    gold.ents = [
        gold.char_span(0, 10, "person"),
        gold.char_span(15, 25, "person"),
        gold.char_span(34, 43, "organization"),
    ]
    scores = nlp.evaluate([Example(nlp.make_doc(TEXT), gold)])
    # Predicted: Bill Gates (right), Albuquerque as organization (wrong); gold has 3.
    assert scores["ents_p"] == pytest.approx(0.5)
    assert scores["ents_r"] == pytest.approx(1 / 3)
    assert scores["ents_per_type"]["person"]["p"] == pytest.approx(1.0)


def test_span_scores_when_only_spans_are_written():
    nlp = assemble({"components.llm.task.annotate": "spans"})
    doc = nlp(TEXT)
    assert doc.ents == () and len(doc.spans["uniner"]) == 4
    gold = nlp.make_doc(TEXT)
    gold.spans["uniner"] = [gold.char_span(s.start_char, s.end_char, s.label_) for s in doc.spans["uniner"]]
    scores = nlp.evaluate([Example(nlp.make_doc(TEXT), gold)])
    assert scores["spans_uniner_f"] == pytest.approx(1.0)


def test_the_task_is_found_through_its_entry_point():
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group=spacy_registry.llm_tasks.entry_point_namespace)}
    assert names.get("spacy_universalner.UniNER.v1") == "spacy_universalner.llm.task:make_uniner_task"
    models = {ep.name for ep in entry_points(group=spacy_registry.llm_models.entry_point_namespace)}
    assert "spacy_universalner.UniNERModel.v1" in models


def test_a_spacy_llm_model_is_a_distillation_teacher_by_registered_name():
    from spacy_universalner.distill.teachers import SYSTEM_MESSAGE, build_teacher

    teacher = build_teacher(
        {
            "@uniner_teachers": "spacy_universalner.SpacyLLMTeacher.v1",
            "model": "test_llm.Echo.v1",
            "settings": {"reply": '[("Bill Gates", "person")]'},
        }
    )
    assert teacher.name == "test_llm.Echo.v1"
    assert teacher("Bill Gates founded Microsoft.") == '[("Bill Gates", "person")]'
    (prompt,) = ECHO_SEEN
    assert prompt.startswith(SYSTEM_MESSAGE + "\n\nGiven a passage") and prompt.endswith(
        "Passage: Bill Gates founded Microsoft."
    )


ECHO_SEEN: List[str] = []


@llm_registry.llm_models("test_llm.Echo.v1")
def make_echo(reply: str = "[]"):
    def echo(prompts: Iterable[Iterable[str]]) -> Iterable[Iterable[str]]:
        out = []
        for doc_prompts in prompts:
            doc_prompts = list(doc_prompts)
            ECHO_SEEN.extend(doc_prompts)
            out.append([reply for _ in doc_prompts])
        return out

    return echo
