"""The span backend (``spacy_universalner.GLiNER.v1``): a GLiNER-architecture model answers UniNER queries.

Behaviour that does not depend on weights (answers, order, confidences, batching, cache) is pinned
with a scripted stand-in model; loading, chunking, encoder passes and the int8 package format run
on a tiny random GLiNER built here (no download).
"""

import json
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import spacy

pytest.importorskip("gliner")

from spacy_universalner.backends import backend_config, is_span_model  # noqa: E402
from spacy_universalner.backends.gliner import GLiNERBackend, answer_generation  # noqa: E402
from spacy_universalner.confidence import mention_scores  # noqa: E402
from spacy_universalner.parsing import parse_answer  # noqa: E402
from spacy_universalner.prompt import UniNERTemplate  # noqa: E402
from spacy_universalner.types import (
    BackendError,  # noqa: E402
    Query,
)

TEMPLATE = UniNERTemplate()


class ScriptedSpanModel:
    """Finds the scripted ``{label: [(string, score)]}`` in each passage, as ``GLiNER.inference`` reports them."""

    def __init__(self, script):
        self.script = script
        self.calls = []
        self.data_processor = SimpleNamespace(words_splitter=None, transformer_tokenizer=None)

    def inference(self, texts, labels, flat_ner=True, threshold=0.5, batch_size=8, multi_label=False):
        self.calls.append({"texts": list(texts), "labels": labels, "threshold": threshold, "flat_ner": flat_ner})
        results = []
        for i, text in enumerate(texts):
            asked = labels[i] if labels and isinstance(labels[0], list) else labels
            found = []
            for label in asked:
                for string, score in self.script.get(label, []):
                    start = text.find(string)
                    while start >= 0 and score >= threshold:
                        found.append(
                            {"start": start, "end": start + len(string), "text": string, "label": label, "score": score}
                        )
                        start = text.find(string, start + 1)
            results.append(sorted(found, key=lambda e: -e["score"]))  # GLiNER does not sort by position
        return results


def scripted_backend(script, **settings):
    return GLiNERBackend(name="scripted", device="cpu", model=ScriptedSpanModel(script), **settings)


def pipeline(backend, labels, **config):
    nlp = spacy.blank("en")
    component = nlp.add_pipe("universal_ner", config={"labels": labels, **config})
    component.model = backend
    return nlp


def test_each_query_gets_a_uniner_json_list_in_document_order_each_mention_once():
    backend = scripted_backend({"city": [("Paris", 0.9), ("Berlin", 0.8)], "person": []})
    text = "From Berlin to Paris, then back to Berlin."
    city, person = backend([TEMPLATE.query(text, "city"), TEMPLATE.query(text, "person")])
    assert city.text == '["Berlin", "Paris"]'
    assert parse_answer(city.text, lenient=False).mentions == ["Berlin", "Paris"]  # the official rule reads it
    assert person.text == "[]"


def test_all_labels_of_a_passage_go_through_one_model_call():
    model = ScriptedSpanModel({"person": [("Bill Gates", 0.9)], "organization": [("Microsoft", 0.8)]})
    backend = GLiNERBackend(name="scripted", device="cpu", model=model, passages_per_batch=32)
    nlp = pipeline(backend, ["person", "organization", "location", "date"])
    docs = list(nlp.pipe(["Bill Gates founded Microsoft.", "Microsoft is big.", "Hello there."], batch_size=8))
    assert len(model.calls) == 1
    assert sorted(model.calls[0]["texts"]) == sorted(
        ["Bill Gates founded Microsoft.", "Microsoft is big.", "Hello there."]
    )
    assert model.calls[0]["labels"] == ["person", "organization", "location", "date"]
    assert [(e.text, e.label_) for e in docs[0].ents] == [("Bill Gates", "person"), ("Microsoft", "organization")]
    assert [(e.text, e.label_) for e in docs[1].ents] == [("Microsoft", "organization")]
    assert list(docs[2].ents) == []


def test_passages_are_batched_by_the_backend_batch_size():
    model = ScriptedSpanModel({})
    backend = GLiNERBackend(name="scripted", device="cpu", model=model, passages_per_batch=2)
    backend([TEMPLATE.query(text, "person") for text in ("one.", "two two.", "three three three.")])
    assert [len(call["texts"]) for call in model.calls] == [2, 1]
    assert model.calls[0]["texts"] == ["three three three.", "two two."]  # longest first: less padding


def test_span_scores_are_the_mentions_confidences():
    generation = answer_generation([("Paris", 0.9), ("Berlin", 0.25), ("Paris", 0.95)])
    assert generation.text == '["Paris", "Berlin"]'
    assert mention_scores(generation, ["Paris", "Berlin"]) == pytest.approx([0.95, 0.25])


def test_confidences_reach_the_doc_and_the_component_threshold_drops_low_ones():
    backend = scripted_backend({"person": [("Alice", 0.92), ("Bob", 0.61)]})
    doc = pipeline(backend, ["person"])("Alice met Bob.")
    assert [e._.uniner_score for e in doc.ents] == pytest.approx([0.92, 0.61])
    assert doc.spans["uniner"].attrs["scores"] == pytest.approx([0.92, 0.61])
    strict = pipeline(scripted_backend({"person": [("Alice", 0.92), ("Bob", 0.61)]}), ["person"], threshold=0.8)
    assert [e.text for e in strict("Alice met Bob.").ents] == ["Alice"]


def test_the_backend_threshold_is_the_models_decision_threshold():
    backend = scripted_backend({"person": [("Alice", 0.92), ("Bob", 0.61)]}, threshold=0.7)
    (answer,) = backend([TEMPLATE.query("Alice met Bob.", "person")])
    assert answer.text == '["Alice"]'
    assert backend.model.calls[0]["threshold"] == 0.7


def test_cached_answers_replay_without_the_model(tmp_path):
    cache = str(tmp_path / "responses.jsonl")
    first = pipeline(scripted_backend({"person": [("Alice", 0.9)]}), ["person"], cache=cache)
    assert [e.text for e in first("Alice met Bob.").ents] == ["Alice"]

    class Unloadable(GLiNERBackend):
        @property
        def model(self):
            raise AssertionError("the model was loaded although every answer is cached")

    replay = pipeline(Unloadable(name="scripted", device="cpu"), ["person"], cache=cache)
    assert [e.text for e in replay("Alice met Bob.").ents] == ["Alice"]


def test_prompts_that_are_not_uniner_questions_are_refused_clearly():
    backend = scripted_backend({})
    with pytest.raises(BackendError, match="span model: it answers UniNER questions only"):
        backend([Query("", "Translate this into French.")])


@pytest.mark.parametrize(
    "setting",
    [
        {"threshold": 0.0},
        {"threshold": 1.5},
        {"passages_per_batch": 0},
        {"device": "gpu"},
        {"dtype": "half"},
        {"flat_decoding": "dp"},
    ],
)
def test_bad_settings_fail_when_the_backend_is_built(setting):
    with pytest.raises(ValueError):
        GLiNERBackend(name="scripted", **{"device": "cpu", **setting})


def test_span_models_are_told_apart_from_causal_lms(tmp_path):
    (tmp_path / "gliner_config.json").write_text("{}")
    assert is_span_model(str(tmp_path)) and is_span_model("urchade/gliner_small-v2.1")
    assert not is_span_model("Universal-NER/UniNER-7B-type")
    assert backend_config("urchade/gliner_small-v2.1")["@uniner_backends"] == "spacy_universalner.GLiNER.v1"
    assert backend_config("Universal-NER/UniNER-7B-type")["@uniner_backends"] == "spacy_universalner.HuggingFace.v1"


# --- a real (tiny, random) GLiNER ------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_gliner(tmp_path_factory):
    from spacy_universalner.testing import build_tiny_gliner

    return str(build_tiny_gliner(tmp_path_factory.mktemp("tiny-gliner") / "model"))


def count_encoder_passes(backend):
    calls = []
    backend.model.model.register_forward_hook(lambda module, args, kwargs, output: calls.append(1), with_kwargs=True)
    return calls


@pytest.mark.slow
def test_a_real_span_model_answers_many_labels_in_one_encoder_pass(tiny_gliner):
    backend = GLiNERBackend(name=tiny_gliner, device="cpu", threshold=0.3, passages_per_batch=32)
    passes = count_encoder_passes(backend)
    labels = [
        "person",
        "organization",
        "location",
        "date",
        "event",
        "product",
        "country",
        "city",
        "award",
        "song",
        "album",
        "field",
    ]
    answers = backend([TEMPLATE.query("Bill Gates founded Microsoft in Albuquerque.", label) for label in labels])
    assert len(passes) == 1
    assert len(answers) == len(labels)
    for answer in answers:
        assert isinstance(json.loads(answer.text), list)
        assert all(mention in "Bill Gates founded Microsoft in Albuquerque." for mention in json.loads(answer.text))


@pytest.mark.slow
def test_long_docs_are_cut_into_passages_the_encoder_can_take(tiny_gliner):
    backend = GLiNERBackend(name=tiny_gliner, device="cpu", threshold=0.3)
    nlp = pipeline(backend, ["person", "city"], max_chunk_tokens=48, chunk_overlap=8)
    text = " ".join(["Guido van Rossum created Python while at CWI in Amsterdam."] * 30)
    seen = []
    original = backend.model.inference
    backend.model.inference = lambda texts, *args, **kwargs: seen.extend(texts) or original(texts, *args, **kwargs)
    doc = nlp(text)
    assert len(seen) > 1
    assert max(backend.count_tokens(seen)) <= 48
    assert {r["chunk"] for r in doc._.uniner_responses} == set(range(len(seen)))


@pytest.mark.slow
def test_int8_package_weights_round_trip(tiny_gliner, tmp_path):
    from spacy_universalner.span_weights import INT8_WEIGHTS, export_int8

    written = export_int8(tiny_gliner, tmp_path / "int8")
    assert (tmp_path / "int8" / INT8_WEIGHTS) in written and not (tmp_path / "int8" / "pytorch_model.bin").exists()
    config = json.loads((tmp_path / "int8" / "gliner_config.json").read_text(encoding="utf8"))
    assert config["model_name"] == "."  # not the exporting machine's path
    full = GLiNERBackend(name=tiny_gliner, device="cpu", threshold=0.3)
    small = GLiNERBackend(name=str(tmp_path / "int8"), device="cpu", threshold=0.3)
    before, after = full.model.model.state_dict(), small.model.model.state_dict()
    assert before.keys() == after.keys()
    for name, weight in before.items():
        if weight.is_floating_point() and weight.dim() == 2 and weight.numel() >= 4096:
            step = weight.abs().amax(dim=1, keepdim=True) / 127
            assert ((weight - after[name]).abs() <= step / 2 + 1e-6).all(), name
        else:
            assert (weight == after[name]).all(), name
    assert small.cache_key != full.cache_key  # other weights, other cached answers


@pytest.mark.slow
def test_export_span_records_the_recommended_threshold_and_dtype(tiny_gliner, tmp_path):
    from typer.testing import CliRunner

    from spacy_universalner.cli import app

    dest = tmp_path / "int8"
    result = CliRunner().invoke(
        app,
        [
            "export-span",
            tiny_gliner,
            str(dest),
            "--threshold",
            "0.3",
            "--dtype",
            "bfloat16",
            "--flat-decoding",
            "best_total",
        ],
    )
    assert result.exit_code == 0, result.output
    settings = {"threshold": 0.3, "dtype": "bfloat16", "flat_decoding": "best_total"}
    assert json.loads((dest / "uniner_settings.json").read_text()) == settings
    assert GLiNERBackend(name=str(dest), device="cpu").flat_decoding == "best_total"
    assert (
        GLiNERBackend(name=str(dest), device="cpu", flat_decoding="greedy").flat_decoding == "greedy"
    )  # a setting wins
    assert GLiNERBackend(name=tiny_gliner, device="cpu").flat_decoding == "greedy"  # GLiNER's own
    refused = CliRunner().invoke(app, ["export-span", tiny_gliner, str(tmp_path / "other"), "--dtype", "half"])
    assert refused.exit_code != 0 and "--dtype must be" in refused.output
    assert not (tmp_path / "other").exists()  # nothing half-written


@pytest.mark.slow
def test_factored_and_folded_span_head_gives_the_same_answers_and_scores(tiny_gliner):
    texts = [
        "Bill Gates founded Microsoft in Albuquerque.",
        "Guido van Rossum created Python while at CWI in Amsterdam.",
    ]
    queries = [TEMPLATE.query(text, label) for text in texts for label in ("person", "organization", "location")]
    plain = GLiNERBackend(name=tiny_gliner, device="cpu", threshold=0.3, factored_spans=False)
    factored = GLiNERBackend(name=tiny_gliner, device="cpu", threshold=0.3)
    before, after = plain(queries), factored(queries)
    assert type(factored.model.model.span_rep_layer.span_rep_layer).__name__ == "FactoredSpanMarkerV0"
    assert type(factored.model.model.prompt_rep_layer).__name__ == "FoldedTypeProjection"  # W2 applied per type
    assert any(g.text != "[]" for g in before)  # the comparison covers real mentions
    assert [g.text for g in after] == [g.text for g in before]
    for a, b in zip(after, before):
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-5)


def test_span_rows_read_as_windows_equal_the_rows_read_by_index_for_every_valid_span():
    import torch
    from gliner.data_processing.utils import prepare_span_idx
    from gliner.modeling.span_rep import SpanMarkerV0

    from spacy_universalner.backends.fast_spans import _classes

    torch.manual_seed(0)
    width, dim, lengths = 4, 8, [5, 3]  # a ragged batch: the second passage is padded
    marker = SpanMarkerV0(dim, width).eval()
    marker.__class__ = _classes()[0]
    layout = prepare_span_idx(max(lengths), width)
    valid = torch.stack([layout[:, 1] < n for n in lengths])  # what GLiNER's span_mask keeps
    span_idx = layout.unsqueeze(0).repeat(2, 1, 1) * valid.unsqueeze(-1)
    h = torch.randn(2, max(lengths), dim)
    with torch.no_grad():
        windows = marker(h, span_idx)
        by_index = marker(torch.cat([h, torch.randn(2, 1, dim)], dim=1), span_idx)  # rows != words: the index path
        plain = SpanMarkerV0.forward(marker, h, span_idx)
    mask = valid.view(2, max(lengths), width)
    assert torch.allclose(windows[mask], by_index[mask]) and torch.allclose(windows[mask], plain[mask], atol=1e-6)
    assert not torch.allclose(windows[~mask], plain[~mask])  # invalid spans differ, and are never decoded


def test_best_total_decoding_keeps_the_non_overlapping_mentions_with_the_largest_total_score():
    from spacy_universalner.backends.gliner import best_total_spans

    def span(start, end, label, score):
        return {"start": start, "end": end, "label": label, "score": score, "text": "x" * (end - start)}

    merged = span(19, 43, "location", 0.51)  # "Microsoft in Albuquerque"
    parts = [span(19, 28, "location", 0.46), span(32, 43, "location", 0.49)]
    person = span(0, 10, "person", 0.83)
    assert best_total_spans([person, merged, *parts]) == [person, *parts]  # 0.95 beats 0.51; greedy keeps merged
    assert best_total_spans([person, span(19, 43, "location", 0.99), *parts]) == [
        person,
        span(19, 43, "location", 0.99),
    ]
    same_span = [span(0, 10, "person", 0.6), span(0, 10, "organization", 0.7)]
    assert best_total_spans(same_span) == [same_span[1]]  # one type per mention
    assert best_total_spans([]) == []


def test_a_model_folder_can_recommend_its_threshold(tmp_path):
    assert GLiNERBackend(name=str(tmp_path), device="cpu").threshold == 0.5  # GLiNER's own default
    (tmp_path / "uniner_settings.json").write_text('{"threshold": 0.3}')
    assert GLiNERBackend(name=str(tmp_path), device="cpu").threshold == 0.3
    assert GLiNERBackend(name=str(tmp_path), device="cpu", threshold=0.7).threshold == 0.7  # a setting wins


def test_auto_dtype_follows_the_folders_recommendation_only_where_the_device_runs_it_natively(tmp_path, monkeypatch):
    from spacy_universalner.backends import gliner as span_backend

    (tmp_path / "uniner_settings.json").write_text('{"threshold": 0.3, "dtype": "bfloat16"}')
    monkeypatch.setattr(span_backend, "native_bfloat16", lambda device: True)
    assert GLiNERBackend(name=str(tmp_path), device="cpu").compute_dtype == "bfloat16"
    assert GLiNERBackend(name=str(tmp_path), device="cpu", dtype="float32").compute_dtype == "float32"
    monkeypatch.setattr(span_backend, "native_bfloat16", lambda device: False)
    assert GLiNERBackend(name=str(tmp_path), device="cpu").compute_dtype == "float32"  # emulated bf16 is slower
    assert GLiNERBackend(name="scripted-elsewhere", device="cpu").compute_dtype == "float32"  # no recommendation


@pytest.mark.slow
def test_bfloat16_runs_the_real_model_and_is_cached_apart_from_float32(tiny_gliner):
    queries = [TEMPLATE.query("Bill Gates founded Microsoft in Albuquerque.", label) for label in ("person", "city")]
    full = GLiNERBackend(name=tiny_gliner, device="cpu", threshold=0.3, dtype="float32")
    half = GLiNERBackend(name=tiny_gliner, device="cpu", threshold=0.3, dtype="bfloat16")
    answers = half(queries)
    assert str(next(half.model.model.parameters()).dtype) == "torch.bfloat16"
    assert all(isinstance(json.loads(answer.text), list) for answer in answers)
    assert full.cache_key != half.cache_key


@pytest.mark.parametrize(
    "backend, new_name",
    [
        ("spacy_universalner.GLiNER.v1", "passages_per_batch"),
        ("spacy_universalner.HuggingFace.v1", "queries_per_batch"),
    ],
)
def test_a_backends_old_batch_size_setting_still_works_with_a_warning_naming_the_new_one(backend, new_name):
    from spacy_universalner.registry import uniner_backends

    with pytest.warns(DeprecationWarning, match=new_name):
        made = uniner_backends.get(backend)(batch_size=4)
    assert getattr(made, new_name) == 4


# --- hostile model folders and labels (issue 27) --------------------------------------------------------

EVIL_CODE = """
import pathlib
pathlib.Path({marker!r}).write_text("the model folder's own code ran")
from transformers import BertConfig, BertModel
class EvilModel(BertModel):
    pass
"""


def folder_with_remote_code(tiny_gliner, destination, int8: bool):
    """A copy of the tiny model whose encoder config names a module of its own (``auto_map``)."""
    from spacy_universalner.span_weights import export_int8

    if int8:
        export_int8(tiny_gliner, destination)
    else:
        shutil.copytree(tiny_gliner, destination)
    config_file = destination / "gliner_config.json"
    config = json.loads(config_file.read_text(encoding="utf8"))
    config["model_name"] = config["encoder_config"]["_name_or_path"] = str(
        destination
    )  # where the module is looked for
    config["encoder_config"]["auto_map"] = {"AutoModel": "evil.EvilModel"}
    config_file.write_text(json.dumps(config), encoding="utf8")
    (destination / "evil.py").write_text(EVIL_CODE.format(marker=str(destination / "RAN")), encoding="utf8")
    return destination


@pytest.mark.slow
@pytest.mark.parametrize("int8", [True, False], ids=["int8", "save_pretrained"])
def test_a_model_folder_never_runs_its_own_code_unless_trusted(tiny_gliner, tmp_path, int8, monkeypatch):
    # The gliner library passes trust_remote_code=True itself: the first Doc imported evil.py.
    from spacy_universalner.backends import gliner as span_backend

    folder = folder_with_remote_code(tiny_gliner, tmp_path / "uniner-test-remote-code", int8)
    query = [TEMPLATE.query("Alice met Bob.", "person")]
    with pytest.raises(BackendError, match=r"asks to run Python code .*auto_map.*trust_remote_code = true"):
        GLiNERBackend(name=str(folder), device="cpu")(query)
    # A hub id cannot be read before gliner fetches it: every import of a model's code is refused while loading.
    monkeypatch.setattr(span_backend, "remote_code_in", lambda folder: None)
    with pytest.raises(BackendError, match=r"asks to run Python code .*evil.EvilModel.*trust_remote_code = true"):
        GLiNERBackend(name=str(folder), device="cpu")(query)
    assert not (folder / "RAN").exists()
    try:  # opted in: the code runs (this module is no working model; running is what is tested)
        GLiNERBackend(name=str(folder), device="cpu", trust_remote_code=True)(query)
    except BackendError:
        pass
    assert (folder / "RAN").exists()
    from transformers.dynamic_module_utils import HF_MODULES_CACHE  # where transformers copied the module

    shutil.rmtree(
        Path(HF_MODULES_CACHE) / "transformers_modules" / "uniner_hyphen_test_hyphen_remote_hyphen_code",
        ignore_errors=True,
    )


def test_trust_remote_code_is_off_by_default_and_must_be_a_boolean():
    from spacy_universalner.registry import uniner_backends

    assert uniner_backends.get("spacy_universalner.GLiNER.v1")().trust_remote_code is False
    with pytest.raises(ValueError, match="trust_remote_code must be true or false"):
        GLiNERBackend(name="scripted", device="cpu", trust_remote_code="yes")


def test_a_missing_hub_model_gets_the_span_backends_hint_and_no_library_warning():
    # Issue 24: the hint showed the HuggingFace.v1 block, and gliner's `resume_download` warning leaked.
    backend = GLiNERBackend(name="someone/no-such-gliner-model", device="cpu")
    with warnings.catch_warnings(record=True) as caught, pytest.raises(BackendError) as failure:
        warnings.simplefilter("always")
        backend([TEMPLATE.query("Alice met Bob.", "person")])
    message = str(failure.value)
    assert '"spacy_universalner.GLiNER.v1", "name": "./my-model"' in message and "HuggingFace.v1" not in message
    assert not [w for w in caught if "resume_download" in str(w.message)]


def test_a_type_holding_the_span_models_marker_text_is_refused():
    # "<<ENT>> person" was read as two types and shifted the others: Bill Gates became a location.
    backend = scripted_backend({"person": [("Bill Gates", 0.9)]})
    for label in ("<<ENT>> person", "person <<SEP>>", "[ENT]"):
        with pytest.raises(
            BackendError, match=r"holds '(<<ENT>>|<<SEP>>|\[ENT\])', the text a span model marks types with"
        ):
            backend([TEMPLATE.query("Bill Gates founded Microsoft.", label)])


def test_types_that_do_not_fit_beside_the_passage_are_read_in_several_passes_and_decoded_together():
    # 120+ types pushed the passage out of the encoder's 512 tokens: no entity at all, and no warning.
    labels = ["person"] + [f"type{i}" for i in range(299)]  # 2 encoder tokens each: 600 > 512
    model = ScriptedSpanModel(
        {"person": [("Bill Gates", 0.9)], "type298": [("Gates", 0.95)], "type5": [("Microsoft", 0.8)]}
    )
    backend = GLiNERBackend(name="scripted", device="cpu", model=model)
    answers = backend([TEMPLATE.query("Bill Gates founded Microsoft.", label) for label in labels])
    passes = model.calls[0]["labels"] if len(model.calls) == 1 else [call["labels"] for call in model.calls]
    assert sum(len(group) for group in passes) == 300 and len(passes) == 2
    assert all(2 * len(group) + 3 + 5 <= 512 for group in passes)  # each pass fits beside the passage
    by_label = dict(zip(labels, (json.loads(a.text) for a in answers)))
    # decoded as one flat pass would: "Gates" (0.95) wins over the overlapping "Bill Gates" (0.9) of the other pass
    assert by_label["type298"] == ["Gates"] and by_label["person"] == [] and by_label["type5"] == ["Microsoft"]


def test_a_few_types_still_take_one_pass_with_the_libraries_own_decoding():
    model = ScriptedSpanModel({"person": [("Bill Gates", 0.9)]})
    GLiNERBackend(name="scripted", device="cpu", model=model)(
        [TEMPLATE.query("Bill Gates.", lab) for lab in ("person", "city")]
    )
    assert len(model.calls) == 1 and model.calls[0]["flat_ner"] is True


@pytest.mark.slow
def test_passages_are_cut_by_the_span_models_words_too(tiny_gliner):
    # 400 emoji before a sentence: one unknown token to the tokenizer, 400 words to GLiNER, which reads 384 at most.
    backend = GLiNERBackend(name=tiny_gliner, device="cpu", threshold=0.3)
    text = "😀" * 400 + " Bill Gates founded Microsoft."
    assert backend.count_tokens([text])[0] >= 400
    seen = []
    original = backend.model.inference
    backend.model.inference = lambda texts, *args, **kwargs: seen.extend(texts) or original(texts, *args, **kwargs)
    pipeline(backend, ["person"])(text)
    assert len(seen) > 1 and any("Bill Gates founded Microsoft." in passage for passage in seen)
    assert max(sum(1 for _ in backend._splitter()(passage)) for passage in seen) <= 256


@pytest.mark.slow
def test_float32_answers_do_not_depend_on_which_passages_share_a_batch(tiny_gliner):
    # Issue 27: in bfloat16, 4-5 of 80 Docs got other entities at batch sizes 4 and 1000 than alone (padding
    # changes the rounding). That is documented; float32 is the setting for results independent of batching.
    texts = [
        "Bill Gates founded Microsoft in Albuquerque.",
        "Ada met Alan.",
        "Guido van Rossum created Python while at CWI in Amsterdam, and later moved to the United States.",
    ]
    queries = [TEMPLATE.query(text, label) for text in texts for label in ("person", "city", "organization")]

    def answers(passages_per_batch):
        backend = GLiNERBackend(
            name=tiny_gliner, device="cpu", threshold=0.3, dtype="float32", passages_per_batch=passages_per_batch
        )
        return [(g.text, [round(lp, 5) for lp in g.token_logprobs]) for g in backend(queries)]

    alone = answers(1)
    assert answers(8) == alone and any(text != "[]" for text, _ in alone)
