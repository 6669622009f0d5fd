"""train-span: UniNER conversations become GLiNER examples, and a span model trains from them, resumably."""

import json
import random

import pytest
import spacy

pytest.importorskip("gliner")

from spacy_universalner.conversations import make_conversation  # noqa: E402
from spacy_universalner.distill.span import SpanDataSettings, build_examples, conversation_examples  # noqa: E402

TEXT = "Bill Gates founded Microsoft. He lives in Seattle. Microsoft is big."


def record(answers):
    return make_conversation("p1", TEXT, answers)


def test_mentions_are_placed_on_words_and_empty_answers_are_negative_types():
    examples = conversation_examples(
        spacy.blank("en"),
        record([("person", ["Bill Gates"]), ("company", ["Microsoft"]), ("disease", [])]),
        SpanDataSettings(random_negatives=0),
        [],
        random.Random(0),
    )
    (example,) = examples
    words = example["tokenized_text"]
    assert words[:4] == ["Bill", "Gates", "founded", "Microsoft"]
    assert sorted(example["ner"]) == [[0, 1, "person"], [3, 3, "company"], [10, 10, "company"]]  # every occurrence
    assert sorted(example["ner_labels"]) == ["company", "disease", "person"]


def test_long_passages_are_cut_at_sentence_ends_and_types_are_judged_per_window():
    examples = conversation_examples(
        spacy.blank("en"),
        record([("person", ["Bill Gates"]), ("city", ["Seattle"])]),
        SpanDataSettings(max_words=8, random_negatives=0),
        [],
        random.Random(0),
    )
    assert [" ".join(e["tokenized_text"]) for e in examples][:2] == [
        "Bill Gates founded Microsoft .",
        "He lives in Seattle .",
    ]
    first, second = examples[0], examples[1]
    assert first["ner"] == [[0, 1, "person"]] and "city" in first["ner_labels"]  # no Seattle here: a negative
    assert second["ner"] == [[3, 3, "city"]] and "person" in second["ner_labels"]


def test_examples_are_the_same_for_a_seed():
    records = [record([("person", ["Bill Gates"])]), record([("city", ["Seattle"])])]
    assert build_examples(records, SpanDataSettings(seed=3)) == build_examples(records, SpanDataSettings(seed=3))


def tiny_training(**settings):
    """A [training] block for a few steps on a tiny model: a checkpoint and a log line every step."""
    return {
        "max_steps": 1,
        "per_device_train_batch_size": 4,
        "save_steps": 1,
        "logging_steps": 1,
        "learning_rate": 1e-3,
        "report_to": "none",
        "progress": False,
        "seed": 0,
        **settings,
    }


@pytest.mark.slow
def test_a_tiny_span_model_trains_saves_and_resumes(tmp_path):
    pytest.importorskip("accelerate")
    from spacy_universalner.distill.span import run_train_span
    from spacy_universalner.testing import build_tiny_gliner

    encoder = build_tiny_gliner(tmp_path / "tiny").parent / "tiny-encoder"
    data = tmp_path / "train.json"
    data.write_text(json.dumps([record([("person", ["Bill Gates"]), ("company", ["Microsoft"])])] * 8))
    config = {
        "model": {"encoder": str(encoder), "hidden_size": 32, "max_width": 4},
        "training": tiny_training(max_steps=2),
    }
    summary = run_train_span(data, tmp_path / "out", config)
    assert summary["steps"] == 2 and (tmp_path / "out" / "gliner_config.json").is_file()
    assert (tmp_path / "out" / "checkpoints" / "checkpoint-2").is_dir()
    config["training"]["max_steps"] = 3
    resumed = run_train_span(data, tmp_path / "out", config, resume=True)
    assert resumed["resumed_from"].endswith("checkpoint-2") and resumed["steps"] == 3


def test_training_goes_on_from_an_int8_export(tmp_path):
    """A shipped model (int8, e.g. the packaged uniner-span) is a valid `init`: it trains on in float32."""
    pytest.importorskip("accelerate")
    from spacy_universalner.distill.span import run_train_span
    from spacy_universalner.span_weights import export_int8
    from spacy_universalner.testing import build_tiny_gliner

    export_int8(build_tiny_gliner(tmp_path / "tiny"), tmp_path / "int8")
    data = tmp_path / "train.json"
    data.write_text(json.dumps([record([("person", ["Bill Gates"])])] * 4))
    config = {
        "model": {"init": str(tmp_path / "int8")},
        "training": tiny_training(max_steps=1),
    }
    summary = run_train_span(data, tmp_path / "out", config)
    assert summary["steps"] == 1 and (tmp_path / "out" / "gliner_config.json").is_file()


def test_gold_records_get_no_drawn_negatives_and_teacher_records_draw_only_teacher_types():
    """A type of another schema is unknown, not absent: "company" is never a negative of a CoNLL sentence."""
    conll = make_conversation(
        "conll2003:0", TEXT, [("person", ["Bill Gates"]), ("location", ["Seattle"]), ("organization", ["Microsoft"])]
    )
    conll["complete"] = True
    teacher = make_conversation("pile:1", "Aspirin treats headaches.", [("drug", ["Aspirin"]), ("symptom", [])])
    examples = build_examples([conll, teacher], SpanDataSettings(random_negatives=5, seed=0))
    gold_example, teacher_example = examples
    assert sorted(gold_example["ner_labels"]) == ["location", "organization", "person"]
    assert set(teacher_example["ner_labels"]) <= {"drug", "symptom"}  # drawn from teacher types only


def test_partially_labelled_records_are_marked_and_keep_their_positives_first():
    silver = make_conversation("multiconer2:0", TEXT, [("company", ["Microsoft"])])
    silver["complete"] = False
    (example,) = build_examples([silver], SpanDataSettings(max_types=1, random_negatives=3))
    assert example["partial"] is True
    assert example["ner_labels"] == ["company"]
    assert sorted(example["ner"]) == [[3, 3, "company"], [10, 10, "company"]]


def test_partial_negatives_are_masked_at_the_asked_rate_and_positives_never():
    """The collator turns negative (span, type) pairs of partial examples into GLiNER's ignore index."""
    import torch

    from spacy_universalner.distill.span import PartialLabelCollator

    def fake_collator(examples):
        labels = torch.zeros(len(examples), 2000, 2)
        labels[:, 0, 0] = 1.0  # one positive per example
        return {"labels": labels}

    batch = PartialLabelCollator(fake_collator, keep=0.25, seed=0)([{"partial": True}, {}])
    partial, complete = batch["labels"]
    assert partial[0, 0] == 1.0
    ignored = (partial == -100).float().mean().item()
    assert 0.70 < ignored < 0.80  # about 3 in 4 negatives ignored
    assert (complete == -100).sum() == 0  # a complete example keeps every negative
    with pytest.raises(ValueError, match="between 0 and 1"):
        PartialLabelCollator(fake_collator, keep=1.5)


def test_typed_negatives_of_partial_examples_can_be_kept_whole():
    """A span labelled with one asked type is a vouched negative for the others: keep_typed spares its row."""
    import torch

    from spacy_universalner.distill.span import PartialLabelCollator

    def fake_collator(examples):
        labels = torch.zeros(len(examples), 2000, 3)
        labels[:, 0, 0] = 1.0  # span 0 is a mention of type 0, so not of types 1 and 2
        return {"labels": labels}

    (partial,) = PartialLabelCollator(fake_collator, keep=0.25, seed=0, keep_typed=True)([{"partial": True}])["labels"]
    assert partial[0].tolist() == [1.0, 0.0, 0.0]  # the typed span's negatives all count
    assert 0.70 < (partial[1:] == -100).float().mean().item() < 0.80  # unlabelled spans masked as before
    (masked,) = PartialLabelCollator(fake_collator, keep=0.0, seed=0)([{"partial": True}])["labels"]
    assert masked[0].tolist() == [1.0, -100.0, -100.0]  # without keep_typed they are masked too


def test_pile_ner_gold_records_marked_drawn_draw_teacher_types_like_teacher_data():
    """Pile-NER-type passages vouch for absent teacher types (ChatGPT listed every entity): they draw negatives."""
    pile = make_conversation("pile_ner_391:0", TEXT, [("person", ["Bill Gates"])])
    pile.update({"complete": False, "negatives": "drawn"})
    teacher = make_conversation("pile:1", "Aspirin treats headaches.", [("drug", ["Aspirin"])])
    pile_example, _ = build_examples([pile, teacher], SpanDataSettings(random_negatives=2, seed=0))
    assert set(pile_example["ner_labels"]) == {"person", "drug"} and pile_example["partial"] is True


def test_type_contrast_loss_is_a_softmax_over_the_vouched_types_of_each_labelled_span():
    """Each span labelled with one asked type adds -log softmax(its types)[that type]; ignored pairs stay out."""
    import math

    import torch

    from spacy_universalner.distill.span import type_contrast_loss

    logits = torch.tensor([[[2.0, 0.0, 5.0], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0]]])  # (batch 1, 3 spans, 3 types)
    labels = torch.tensor([[[1.0, 0.0, -100.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]])
    class_mask = torch.tensor([[1, 1, 1]])
    # span 0: type 2 is ignored (-100), so the softmax is over types 0 and 1 only; span 1 has no label and
    # span 2 two of them: neither adds anything
    expected = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(0.0)))
    assert type_contrast_loss(logits, labels, class_mask).item() == pytest.approx(expected)
    # a padded type (class_mask 0) is no competitor either
    first_only = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    padded = type_contrast_loss(logits, first_only, torch.tensor([[1, 0, 1]]))
    assert padded.item() == pytest.approx(-math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(5.0))))
    assert type_contrast_loss(logits, torch.zeros_like(labels), class_mask).item() == 0.0  # no labelled span


@pytest.mark.slow
def test_type_contrast_adds_to_the_loss_when_training(tmp_path):
    """training.type_contrast > 0 trains with GLiNER's loss plus the type softmax (a higher loss at step 1)."""
    pytest.importorskip("accelerate")
    from spacy_universalner.distill.span import run_train_span
    from spacy_universalner.testing import build_tiny_gliner

    build_tiny_gliner(tmp_path / "tiny")
    data = tmp_path / "train.json"
    data.write_text(json.dumps([record([("person", ["Bill Gates"]), ("company", ["Microsoft"])])] * 4))

    def first_loss(weight, out):
        config = {
            "model": {"init": str(tmp_path / "tiny")},
            "training": tiny_training(learning_rate=0.0, others_lr=0.0, bf16=False, type_contrast=weight),
        }
        return run_train_span(data, tmp_path / out, config)["train_loss"]

    plain, contrast = first_loss(0.0, "plain"), first_loss(1.0, "contrast")
    assert contrast > plain > 0.0
