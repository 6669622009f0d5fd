"""The ``universal_ner`` component, as users meet it: add_pipe, nlp.pipe, save/load, evaluate."""

import json
import re
import subprocess
import sys

import pytest
import spacy
from spacy import displacy
from spacy.training import Example

from spacy_universalner.prompt import UniNERTemplate
from spacy_universalner.testing import make_keyword_backend  # noqa: F401  (registers the keyword backend)

TEXT = "Bill Gates founded Microsoft in Albuquerque."


def rules(**answers):
    """A keyword backend (:class:`~spacy_universalner.testing.KeywordBackend`) knowing ``answers``."""
    return {"@uniner_backends": "spacy_universalner.testing.Keywords.v1", "name": "rules", "words": answers}


def raw_answers(**raw):
    """A keyword backend giving ``raw[type]`` as it is to every question of that type."""
    return {"@uniner_backends": "spacy_universalner.testing.Keywords.v1", "name": "rules", "raw": raw}


def ents(doc):
    return [(e.text, e.label_) for e in doc.ents]


def write_cache(path, model, text, answers):
    template = UniNERTemplate()
    with open(path, "w", encoding="utf8") as f:
        for label, response in answers.items():
            f.write(json.dumps({"model": model, "prompt": template.prompt(text, label), "response": response}) + "\n")


def test_cached_answers_become_ents_without_loading_the_model(tmp_path):
    # The new-user check: a cache holding the official prompts answers everything.
    cache = tmp_path / "cache.jsonl"
    write_cache(
        cache,
        "no-such-org/no-such-model",
        TEXT,
        {"person": '["Bill Gates"]', "organization": '["Microsoft"]', "location": '["Albuquerque"]'},
    )
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["person", "organization", "location"],
            "model": {"@uniner_backends": "spacy_universalner.HuggingFace.v1", "name": "no-such-org/no-such-model"},
            "cache": str(cache),
        },
    )
    doc = nlp(TEXT)
    assert ents(doc) == [("Bill Gates", "person"), ("Microsoft", "organization"), ("Albuquerque", "location")]
    backend = nlp.get_pipe("universal_ner").model
    assert backend.loaded == ()  # never tried to load anything


def test_a_long_doc_answered_whole_in_the_cache_needs_no_tokenizer(tmp_path):
    text = " ".join(["Bill Gates founded Microsoft in Albuquerque."] * 20)  # > 256 bytes
    cache = tmp_path / "cache.jsonl"
    write_cache(cache, "no-such-org/no-such-model", text, {"person": '["Bill Gates"]'})
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["person"],
            "cache": str(cache),
            "model": {"@uniner_backends": "spacy_universalner.HuggingFace.v1", "name": "no-such-org/no-such-model"},
        },
    )
    assert len(nlp(text).ents) == 20


def test_an_unloadable_model_name_is_a_clear_error():
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["person"],
            "model": {"@uniner_backends": "spacy_universalner.HuggingFace.v1", "name": "no-such-org/no-such-model"},
        },
    )
    with pytest.raises(RuntimeError, match=r"(?s)no-such-org/no-such-model.*download the model once"):
        nlp(TEXT)


def test_adding_the_pipe_loads_nothing_and_imports_no_torch():
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "import spacy, spacy_universalner, spacy_universalner.component\n"
        "nlp = spacy.blank('en'); nlp.add_pipe('universal_ner', config={'labels': ['person']})\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


def test_labels_can_map_entity_labels_to_query_texts():
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": {"ORG": "organization", "PER": "person"},
            "model": rules(organization=["Microsoft"], person=["Bill Gates"]),
        },
    )
    assert ents(nlp(TEXT)) == [("Bill Gates", "PER"), ("Microsoft", "ORG")]
    assert nlp.get_pipe("universal_ner").labels == ("ORG", "PER")


@pytest.mark.parametrize(
    "labels,message",
    [
        ([], "empty"),
        (["person", "person"], "Duplicate"),
        ([""], "Empty"),
        (["per\nson"], "newline"),
        ({"A": "x", "B": "x"}, "same query"),
        ({"PER": 5}, "non-string entity query"),
        (" , ", "empty"),
    ],
)
def test_bad_labels_are_clear_errors(labels, message):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=message):
        nlp.add_pipe("universal_ner", config={"labels": labels, "model": rules()})


def test_add_label_returns_1_for_a_new_label_and_0_for_one_it_has():
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("universal_ner", config={"labels": ["person"], "model": rules(organization=["Microsoft"])})
    assert ner.add_label("organization") == 1
    assert ner.add_label("organization") == 0
    assert ner.add_label("person") == 0
    assert ner.labels == ("person", "organization")
    assert ents(nlp(TEXT)) == [("Microsoft", "organization")]


def test_labels_can_be_a_comma_separated_string():
    nlp = spacy.blank("en")
    nlp.add_pipe("universal_ner", config={"labels": "person, organization", "model": rules()})
    assert nlp.get_pipe("universal_ner").labels == ("person", "organization")


def test_labels_with_quotes_are_asked_verbatim():
    nlp = spacy.blank("en")
    nlp.add_pipe("universal_ner", config={"labels": ['"quoted" type'], "model": rules()})
    nlp(TEXT)
    assert 'What describes "quoted" type in the text?' in nlp.get_pipe("universal_ner").model.calls[0][0]


def test_overlapping_entities_go_to_spans_and_the_longest_to_ents():
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["organization", "location"],
            "model": rules(organization=["University of Cambridge"], location=["Cambridge"]),
        },
    )
    doc = nlp("The University of Cambridge is in Cambridge.")
    assert ents(doc) == [("University of Cambridge", "organization"), ("Cambridge", "location")]
    assert [(s.text, s.label_) for s in doc.spans["uniner"]] == [
        ("University of Cambridge", "organization"),
        ("Cambridge", "location"),
        ("Cambridge", "location"),
    ]


def test_label_order_policy_prefers_earlier_labels():
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["location", "organization"],
            "overlap_policy": "label_order",
            "model": rules(organization=["University of Cambridge"], location=["Cambridge"]),
        },
    )
    doc = nlp("The University of Cambridge is in Cambridge.")
    assert ents(doc) == [("Cambridge", "location"), ("Cambridge", "location")]


@pytest.mark.parametrize(
    "annotate,has_ents,has_spans", [("ents", True, False), ("spans", False, True), ("both", True, True)]
)
def test_annotate_chooses_ents_spans_or_both(annotate, has_ents, has_spans):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={"labels": ["person"], "annotate": annotate, "spans_key": "mine", "model": rules(person=["Bill Gates"])},
    )
    doc = nlp(TEXT)
    assert bool(doc.ents) == has_ents
    assert ("mine" in doc.spans) == has_spans


def test_existing_ents_are_kept_when_not_overwriting():
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "GPE", "pattern": "Albuquerque"}, {"label": "CORP", "pattern": "Microsoft"}])
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["organization", "person"],
            "overwrite_ents": False,
            "model": rules(organization=["Microsoft"], person=["Bill Gates"]),
        },
    )
    assert ents(nlp(TEXT)) == [("Bill Gates", "person"), ("Microsoft", "CORP"), ("Albuquerque", "GPE")]


@pytest.mark.parametrize("policy", ["longest", "label_order"])
def test_a_longer_new_span_never_replaces_an_existing_entity(policy):
    # Existing Alice/GPE; the model answers "Alice met" (overlapping, longer) and "Alice met Bob" beside "Bob".
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "GPE", "pattern": "Alice"}])
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["person"],
            "overwrite_ents": False,
            "overlap_policy": policy,
            "model": raw_answers(person='["Alice met", "Alice met Bob", "Bob"]'),
        },
    )
    doc = nlp("Alice met Bob.")
    assert ents(doc) == [("Alice", "GPE"), ("Bob", "person")]
    assert ("Alice met", "person") in [(s.text, s.label_) for s in doc.spans["uniner"]]  # still in the span group


def test_unaligned_strings_are_kept_for_auditing():
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner", config={"labels": ["person"], "model": raw_answers(person='["Bill Gates", "Steve Jobs"]')}
    )
    doc = nlp(TEXT)
    assert ents(doc) == [("Bill Gates", "person")]
    assert doc._.uniner_unaligned == [{"label": "person", "text": "Steve Jobs", "chunk": 0}]
    assert doc._.uniner_responses == [
        {"label": "person", "query": "person", "chunk": 0, "response": '["Bill Gates", "Steve Jobs"]'}
    ]


@pytest.mark.parametrize(
    "garbage", ["", "I cannot help with that.", "[[[", '["Bill', "]" * 1000, "\x00\ud7ff", "[1, null, true]"]
)
def test_garbage_answers_never_crash(garbage):
    nlp = spacy.blank("en")
    nlp.add_pipe("universal_ner", config={"labels": ["person"], "model": raw_answers(person=garbage)})
    doc = nlp(TEXT)
    assert doc.ents == ()  # nothing usable in the answer: no entity, no error
    assert doc._.uniner_responses[0]["response"] == garbage  # what the model said is kept for auditing


@pytest.mark.parametrize(
    "text, found",
    [
        ("", []),
        ("   \n\t ", []),
        ("😀😀 🙂", [("🙂", "person")]),
        ("東京タワーは東京にあります。", []),
        ("Владимир Путин", [("Владимир Путин", "person")]),
    ],
)
def test_unusual_docs_are_handled(text, found):
    nlp = spacy.blank("en")
    nlp.add_pipe("universal_ner", config={"labels": ["person"], "model": rules(person=["Владимир Путин", "🙂"])})
    doc = nlp(text)
    assert doc.text == text and ents(doc) == found
    if not text.strip():
        assert nlp.get_pipe("universal_ner").model.calls == []  # nothing to ask


def test_nlp_pipe_sends_batch_size_docs_worth_of_queries_per_model_call():
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["person", "organization"],
            "batch_size": 4,
            "model": rules(person=["Bill Gates"], organization=["Microsoft"]),
        },
    )
    docs = list(nlp.pipe([f"{TEXT} ({i})" for i in range(10)]))
    assert all(ents(d) == [("Bill Gates", "person"), ("Microsoft", "organization")] for d in docs)
    calls = nlp.get_pipe("universal_ner").model.calls
    assert [len(c) for c in calls] == [8, 8, 4]  # 4 docs x 2 labels per call


def test_identical_prompts_are_asked_once():
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["person", "organization"],
            "model": rules(person=["Bill Gates"], organization=["Microsoft"]),
        },
    )
    docs = list(nlp.pipe([TEXT] * 5))
    assert all(ents(d) == [("Bill Gates", "person"), ("Microsoft", "organization")] for d in docs)
    assert [len(c) for c in nlp.get_pipe("universal_ner").model.calls] == [2]


def test_long_docs_are_chunked_and_mapped_back():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe(
        "universal_ner", config={"labels": ["person"], "max_chunk_tokens": 64, "model": rules(person=["Ada Lovelace"])}
    )
    filler = "This sentence is only here to make the document longer than one passage. "
    text = filler * 30 + "Ada Lovelace wrote the first program. " + filler * 30
    doc = nlp(text)
    assert ents(doc) == [("Ada Lovelace", "person")]
    assert doc.ents[0].start_char == text.index("Ada Lovelace")
    assert len({r["chunk"] for r in doc._.uniner_responses}) > 5


def test_a_50000_word_doc_works():
    nlp = spacy.blank("en")
    nlp.add_pipe("universal_ner", config={"labels": ["person"], "model": rules(person=["Ada"])})
    words = ["word"] * 50_000
    words[25_000] = "Ada"
    doc = nlp(" ".join(words))
    assert [(e.start, e.text) for e in doc.ents] == [(25_000, "Ada")]


def test_config_round_trips_through_disk(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={"labels": {"ORG": "organization"}, "max_new_tokens": 64, "model": rules(organization=["Microsoft"])},
    )
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    pipe = loaded.get_pipe("universal_ner")
    assert pipe.label_queries == {"ORG": "organization"} and pipe.max_new_tokens == 64
    assert ents(loaded(TEXT)) == [("Microsoft", "ORG")]
    assert [p.name for p in (tmp_path / "pipeline" / "universal_ner").iterdir()] == ["cfg.json"]  # no weights
    assert loaded.from_bytes(nlp.to_bytes()).get_pipe("universal_ner").label_queries == {"ORG": "organization"}


def test_evaluate_uses_spacys_ner_scorer():
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["person", "organization"],
            "model": rules(person=["Bill Gates"], organization=["Albuquerque"]),
        },
    )
    reference = nlp.make_doc(TEXT)
    reference.ents = [reference.char_span(0, 10, "person"), reference.char_span(19, 28, "organization")]
    scores = nlp.evaluate([Example(nlp.make_doc(TEXT), reference)])
    assert scores["ents_p"] == pytest.approx(0.5) and scores["ents_r"] == pytest.approx(0.5)
    assert scores["ents_per_type"]["person"]["f"] == pytest.approx(1.0)


def test_displacy_renders_the_entities():
    nlp = spacy.blank("en")
    nlp.add_pipe("universal_ner", config={"labels": ["person"], "model": rules(person=["Bill Gates"])})
    html = displacy.render(nlp(TEXT), style="ent")
    assert "Bill Gates" in html and "person" in html


def test_separator_mismatch_with_the_tokenizer_warns(tiny_model_path):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["person"],
            "max_new_tokens": 4,
            "model": {
                "@uniner_backends": "spacy_universalner.HuggingFace.v1",
                "name": tiny_model_path,
                "device": "cpu",
            },
            "template": {"@uniner_templates": "spacy_universalner.UniNER.v1", "separator": "<|eot|>"},
        },
    )
    with pytest.warns(UserWarning, match="separator"):
        nlp(TEXT)


@pytest.mark.slow
def test_a_tiny_local_model_runs_over_100_docs(tiny_model_path, tmp_path):
    """Real generation with a random-weight model: garbage answers, but never a crash; cached for replay."""
    nlp = spacy.blank("en")
    cache = tmp_path / "cache.jsonl"
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["person", "organization", "location"],
            "max_new_tokens": 8,
            "cache": str(cache),
            "model": {
                "@uniner_backends": "spacy_universalner.HuggingFace.v1",
                "name": tiny_model_path,
                "device": "cpu",
            },
        },
    )
    texts = [f"Document {i}: Bill Gates met person number {i} in Paris." for i in range(100)]
    docs = list(nlp.pipe(texts, batch_size=25))
    assert len(docs) == 100 and all(len(d._.uniner_responses) == 3 for d in docs)
    assert len(cache.read_text().splitlines()) == 300
    # Replaying from the cache gives the same answers without the model.
    replay = spacy.blank("en")
    replay.add_pipe(
        "universal_ner",
        config={
            "labels": ["person", "organization", "location"],
            "cache": str(cache),
            "model": {"@uniner_backends": "spacy_universalner.HuggingFace.v1", "name": tiny_model_path},
        },
    )
    replayed = list(replay.pipe(texts[:10]))
    assert [d._.uniner_responses for d in replayed] == [d._.uniner_responses for d in docs[:10]]
    assert "model" not in replay.get_pipe("universal_ner").model.loaded


def test_a_cache_is_not_replayed_for_a_model_retrained_in_the_same_folder(tiny_model_path, tmp_path):
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "student"
    shutil.copytree(tiny_model_path, folder)
    cache = tmp_path / "cache.jsonl"
    config = {
        "labels": ["person"],
        "max_new_tokens": 4,
        "cache": str(cache),
        "model": {"@uniner_backends": "spacy_universalner.HuggingFace.v1", "name": str(folder), "device": "cpu"},
    }
    first = spacy.blank("en")
    first.add_pipe("universal_ner", config=config)
    first(TEXT)
    assert len(cache.read_text().splitlines()) == 1
    model = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)  # "retrained": same folder, new weights
    model.save_pretrained(folder)
    second = spacy.blank("en")
    second.add_pipe("universal_ner", config=config)
    second(TEXT)
    assert "model" in second.get_pipe("universal_ner").model.loaded  # asked the new model, not the cache
    assert len(cache.read_text().splitlines()) == 2  # both models' answers kept


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"chunk_overlap": 256}, r"chunk_overlap \(256\) must be at most half of max_chunk_tokens \(256\)"),
        ({"chunk_overlap": 40, "max_chunk_tokens": 64}, "at most half"),
    ],
)
def test_chunking_settings_that_would_multiply_the_queries_are_refused_at_add_pipe(settings, message):
    # chunk_overlap >= max_chunk_tokens used to be accepted: 1,985 queries instead of 125 for a 2,000-token Doc.
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=message):
        nlp.add_pipe("universal_ner", config={"labels": ["person"], "model": rules(), **settings})


def test_an_overly_long_label_is_named_as_too_long_at_add_pipe():
    # It used to fail at the first Doc with advice to lower max_chunk_tokens, which cannot help.
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="5000 characters long, more than 300"):
        nlp.add_pipe("universal_ner", config={"labels": ["x" * 5000], "model": rules()})


def test_a_label_with_a_config_variable_marker_is_refused_and_a_plain_dollar_round_trips(tmp_path):
    # spaCy writes "${" back unescaped, so a pipeline with such a label could be built but never loaded.
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=r'contains "\$\{", which spaCy\'s config reads as a reference'):
        nlp.add_pipe("universal_ner", config={"labels": {"COST": "cost in ${USD}"}, "model": rules()})
    nlp.add_pipe("universal_ner", config={"labels": {"COST": "cost in $"}, "model": rules()})
    nlp.to_disk(tmp_path / "pipeline")
    assert spacy.load(tmp_path / "pipeline").get_pipe("universal_ner").label_queries == {"COST": "cost in $"}


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "tpu:7"])
def test_a_device_torch_does_not_know_is_refused_at_add_pipe(device):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=f"Unknown device '{re.escape(device)}'"):
        nlp.add_pipe(
            "universal_ner",
            config={
                "labels": ["person"],
                "model": {"@uniner_backends": "spacy_universalner.HuggingFace.v1", "name": "x", "device": device},
            },
        )


def test_a_cuda_device_without_cuda_is_refused_at_add_pipe():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="torch sees no CUDA device"):
        nlp.add_pipe(
            "universal_ner",
            config={
                "labels": ["person"],
                "model": {"@uniner_backends": "spacy_universalner.HuggingFace.v1", "name": "x", "device": "cuda"},
            },
        )


@pytest.mark.parametrize(
    "config, setting",
    [
        ({"annotate": "entz"}, "annotate"),
        ({"overlap_policy": "shortest"}, "overlap_policy"),
        ({"alignment_mode": "fuzzy"}, "alignment_mode"),
        ({"model": {"@uniner_backends": "spacy_universalner.GLiNER.v1", "dtype": "float8"}}, "dtype"),
        ({"model": {"@uniner_backends": "spacy_universalner.HuggingFace.v1", "name": "x", "engine": "fast"}}, "engine"),
    ],
)
def test_an_unknown_choice_is_refused_by_config_validation_naming_the_choices(config, setting):
    from confection import ConfigValidationError

    nlp = spacy.blank("en")
    with pytest.raises(ConfigValidationError, match=rf"{setting}.*Literal\["):
        nlp.add_pipe("universal_ner", config={"labels": ["person"], **config})


def test_a_model_that_is_not_a_backend_is_a_clear_error():
    from spacy_universalner.component import UniversalNER

    with pytest.raises(TypeError, match="must be a backend"):
        UniversalNER(spacy.blank("en").vocab, labels=["person"], model="uniner-span")
