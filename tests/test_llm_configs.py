"""The example configs under configs/ and ``spacy_universalner.UniNERModel.v1`` (our backends as a
spacy-llm model). REST models are swapped for local stand-ins: nothing touches the network."""

import json
import re
from pathlib import Path
from typing import Dict, Iterable, List

import pytest
from spacy.util import load_config
from spacy_llm.registry import registry as llm_registry
from spacy_llm.util import assemble_from_config

from spacy_universalner.llm.models import UniNERModel, split_prompt
from spacy_universalner.prompt import UniNERTemplate
from spacy_universalner.registry import uniner_backends
from spacy_universalner.types import Generation, Query

CONFIGS = Path(__file__).parent.parent / "configs"
TEXT = "Geoffrey Hinton presented backpropagation at NeurIPS in Canada."
_QUESTION = re.compile(r"What describes (.*) in the text\? ASSISTANT:$")


def answer(prompt: str, known: Dict[str, List[str]]) -> str:
    label = _QUESTION.search(prompt).group(1)
    return json.dumps([m for m in known.get(label, []) if m in prompt])


KNOWN = {
    "researcher": ["Geoffrey Hinton"],
    "algorithm": ["backpropagation"],
    "conference": ["NeurIPS"],
    "country": ["Canada"],
    "person": ["Geoffrey Hinton"],
}


@llm_registry.llm_models("test_llm_configs.Rules.v1")
def make_rules_model():
    """A stand-in for the OpenAI model: one answer string per prompt string."""

    def model(prompts: Iterable[Iterable[str]]) -> Iterable[Iterable[str]]:
        return [[answer(p, KNOWN) for p in doc_prompts] for doc_prompts in prompts]

    return model


class RecordingBackend:
    """A ``@uniner_backends`` backend that answers by rule and records the queries it got."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: List[List[Query]] = []

    def __call__(self, queries, max_new_tokens=256):
        self.calls.append(list(queries))
        return [Generation(answer(q.prompt, KNOWN)) for q in queries]


@uniner_backends("test_llm_configs.Recording.v1")
def make_recording_backend() -> RecordingBackend:
    return RecordingBackend()


def ents(doc):
    return [(e.text, e.label_) for e in doc.ents]


def test_the_chatgpt_baseline_config_is_the_uniner_task_with_an_openai_model_at_temperature_0():
    config = load_config(CONFIGS / "llm_chatgpt_baseline.cfg")
    llm = config["components"]["llm"]
    assert llm["task"]["@llm_tasks"] == "spacy_universalner.UniNER.v1"
    assert "program language" in llm["task"]["labels"]
    assert llm["model"]["@llm_models"] == "spacy.GPT-3-5.v3"
    assert llm["model"]["config"]["temperature"] == 0


@pytest.mark.filterwarnings("ignore:Task supports sharding")  # the stand-in declares no context length
def test_the_chatgpt_baseline_assembles_and_runs_with_the_model_swapped():
    config = load_config(CONFIGS / "llm_chatgpt_baseline.cfg")
    config["components"]["llm"]["model"] = {"@llm_models": "test_llm_configs.Rules.v1"}
    nlp = assemble_from_config(config)
    doc = nlp(TEXT)
    # "person" and "researcher" both claim Hinton: the span group keeps both, ents the earlier label.
    assert ents(doc) == [
        ("Geoffrey Hinton", "person"),
        ("backpropagation", "algorithm"),
        ("NeurIPS", "conference"),
        ("Canada", "country"),
    ]
    assert ("Geoffrey Hinton", "researcher") in [(s.text, s.label_) for s in doc.spans["uniner"]]


def test_the_uniner_config_sends_shared_prefix_queries_to_our_backend():
    config = load_config(CONFIGS / "llm_uniner.cfg")
    config["components"]["llm"]["model"]["backend"] = {"@uniner_backends": "test_llm_configs.Recording.v1"}
    nlp = assemble_from_config(config)
    docs = list(nlp.pipe([TEXT, TEXT, "Nothing here."]))
    assert ents(docs[0]) == ents(docs[1]) == [("Geoffrey Hinton", "person")] and ents(docs[2]) == []
    backend = nlp.get_pipe("llm")._model.backend
    (queries,) = backend.calls  # one backend call for the whole batch of Docs
    template = UniNERTemplate()
    # Each prompt string is split back into the Query it was built from; the repeated Doc is asked once.
    assert queries == [
        template.query(text, label)
        for text in (TEXT, "Nothing here.")
        for label in ("person", "organization", "location")
    ]


def test_uniner_model_keeps_each_docs_answers_in_prompt_order():
    backend = RecordingBackend()
    model = UniNERModel(backend, UniNERTemplate(), max_new_tokens=16, context_length=64)
    template = UniNERTemplate()
    prompts = [
        [template.prompt(TEXT, "country"), template.prompt(TEXT, "person")],
        [],
        [template.prompt(TEXT, "country")],
    ]
    assert model(prompts) == [['["Canada"]', '["Geoffrey Hinton"]'], [], ['["Canada"]']]
    assert len(backend.calls) == 1 and len(backend.calls[0]) == 2
    assert model.context_length == 64 and model.name == "recording"


def test_split_prompt_recovers_the_query_even_when_the_passage_mentions_user():
    template = UniNERTemplate()
    text = "USER: Text: tricky ASSISTANT: text"
    assert split_prompt(template.prompt(text, "person"), template) == template.query(text, "person")
    assert split_prompt("a prompt of another task", template) == Query("", "a prompt of another task")


def test_uniner_model_rejects_settings_that_cannot_work():
    with pytest.raises(ValueError, match="max_new_tokens"):
        UniNERModel(RecordingBackend(), UniNERTemplate(), max_new_tokens=0)


@pytest.mark.slow
def test_the_uniner_config_runs_a_local_hf_model_inside_the_llm_component(tiny_model_path):
    config = load_config(
        CONFIGS / "llm_uniner.cfg",
        overrides={
            "components.llm.model.backend.name": tiny_model_path,
            "components.llm.model.backend.device": "cpu",
            "components.llm.model.max_new_tokens": 8,
        },
    )
    nlp = assemble_from_config(config)
    doc = nlp(TEXT)
    # Random weights answer nonsense; what matters is that every question was asked and answered.
    assert [r["label"] for r in doc._.uniner_responses] == ["person", "organization", "location"]
    assert all(isinstance(r["response"], str) for r in doc._.uniner_responses)
