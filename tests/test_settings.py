"""The annotation settings are written once (AnnotationSettings); the component, its factory and the spacy-llm
task read their defaults from there. add_label keeps spaCy's contract (1: new label, 0: had it)."""

import inspect
from dataclasses import fields

import pytest
import spacy
from spacy.language import Language

from spacy_universalner.alignment import AlignmentConfig
from spacy_universalner.component import DEFAULT_CONFIG, UniversalNER
from spacy_universalner.doc_spans import (
    ANNOTATION_OPTIONS,
    DEFAULT_ANNOTATION,
    AnnotationSettings,
    annotation_defaults,
)
from spacy_universalner.types import Generation

EXPECTED = {
    "annotate": "both",
    "spans_key": "uniner",
    "overlap_policy": "longest",
    "overwrite_ents": True,
    "alignment_mode": "expand",
    "word_boundaries": True,
    "lenient_parsing": True,
    "threshold": None,
}


class EchoBackend:
    """The smallest backend: answers every question with no mention."""

    name = "echo"

    def __call__(self, queries, max_new_tokens=256):
        return [Generation("[]") for _ in queries]


def _defaults(function, names):
    parameters = inspect.signature(function).parameters
    return {name: parameters[name].default for name in names}


def test_the_dataclass_holds_the_defaults_under_their_config_names():
    assert annotation_defaults() == EXPECTED
    assert annotation_defaults(with_threshold=False) == {k: v for k, v in EXPECTED.items() if k != "threshold"}
    assert list(annotation_defaults(with_threshold=False)) == list(ANNOTATION_OPTIONS)
    # The dataclass's own field defaults are those values (alignment's come from AlignmentConfig).
    own = {f.name: f.default for f in fields(AnnotationSettings) if f.name != "label_queries"}
    assert own["alignment"] == AlignmentConfig() == DEFAULT_ANNOTATION.alignment
    assert AnnotationSettings.from_options(**annotation_defaults()) == DEFAULT_ANNOTATION


def test_factory_component_and_task_defaults_agree_with_the_dataclass():
    from spacy_universalner.component import make_universal_ner

    defaults = annotation_defaults()
    factory = Language.get_factory_meta("universal_ner").default_config
    assert {name: factory[name] for name in defaults} == defaults
    assert {name: DEFAULT_CONFIG[name] for name in defaults} == defaults
    assert _defaults(UniversalNER.__init__, defaults) == defaults
    assert _defaults(make_universal_ner, ["threshold"]) == {"threshold": None}

    pytest.importorskip("spacy_llm")
    from spacy_universalner.llm.task import make_uniner_task

    task_defaults = annotation_defaults(with_threshold=False)
    assert _defaults(make_uniner_task, task_defaults) == task_defaults
    assert make_uniner_task(labels=["person"])._settings == DEFAULT_ANNOTATION


def test_a_component_built_with_no_settings_has_the_default_settings():
    ner = UniversalNER(spacy.blank("en").vocab, labels=["person"], model=EchoBackend())
    assert ner.settings == DEFAULT_ANNOTATION
    changed = UniversalNER(
        spacy.blank("en").vocab,
        labels=["person"],
        model=EchoBackend(),
        annotate="spans",
        alignment_mode="strict",
        threshold=0.5,
    )
    assert changed.settings.options() == {**EXPECTED, "annotate": "spans", "alignment_mode": "strict", "threshold": 0.5}


def test_the_settings_are_taken_by_config_name_from_a_functions_arguments():
    # What the component and the spacy-llm task hand over: their locals(), settings among other arguments.
    arguments = {
        "labels": ["person"],
        "model": "echo",
        **annotation_defaults(with_threshold=False),
        "annotate": "spans",
    }
    settings = AnnotationSettings.from_arguments(arguments)
    assert settings.options() == {**EXPECTED, "annotate": "spans"}  # with no threshold argument, its default
    assert AnnotationSettings.from_arguments({**arguments, "threshold": 0.5}).threshold == 0.5


def test_the_settings_are_checked_wherever_they_come_from():
    with pytest.raises(ValueError, match="annotate must be one of"):
        AnnotationSettings.from_options(**{**annotation_defaults(), "annotate": "entities"})
    with pytest.raises(ValueError, match="alignment_mode must be one of"):
        AnnotationSettings.from_options(**{**annotation_defaults(), "alignment_mode": "fuzzy"})


def test_component_add_label_returns_1_for_a_new_label_and_0_for_one_it_has():
    ner = UniversalNER(spacy.blank("en").vocab, labels=["person"], model=EchoBackend())
    assert ner.add_label("organization") == 1
    assert ner.add_label("organization") == 0
    assert ner.add_label("person", "human being") == 0  # the query changes; the label set does not
    assert ner.labels == ("person", "organization") and ner.label_queries["person"] == "human being"


def test_task_add_label_returns_1_for_a_new_label_and_0_for_one_it_has():
    pytest.importorskip("spacy_llm")
    from spacy_universalner.llm.task import make_uniner_task

    task = make_uniner_task(labels=["person"])
    assert task.add_label("organization") == 1
    assert task.add_label("organization") == 0
    assert task.add_label("person") == 0
    assert task.labels == ("person", "organization")
