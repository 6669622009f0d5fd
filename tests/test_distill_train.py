"""train: loss only on assistant turns, prompts as inference builds them, a student universal_ner loads."""

import json
from pathlib import Path

import pytest

from spacy_universalner.conversations import read_conversation
from spacy_universalner.distill.train import (
    IGNORE,
    PadCollator,
    encode_conversation,
    load_train_config,
    run_train,
)
from spacy_universalner.prompt import UniNERTemplate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PACKAGED = Path(__file__).resolve().parents[1] / "spacy_universalner" / "configs"
TEXT = "Bill Gates founded Microsoft in Albuquerque."
RECORD = {
    "id": "a",
    "conversations": [
        {"from": "human", "value": f"Text: {TEXT}"},
        {"from": "gpt", "value": "I've read this text."},
        {"from": "human", "value": "What describes person in the text?"},
        {"from": "gpt", "value": '["Bill Gates"]'},
        {"from": "human", "value": "What describes date in the text?"},
        {"from": "gpt", "value": "[]"},
    ],
}


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_path)


def test_only_assistant_turns_and_their_eos_are_targets(tokenizer):
    template = UniNERTemplate(separator=tokenizer.eos_token)
    encoded = encode_conversation(tokenizer, template, *read_conversation(RECORD))
    ids, labels = encoded["input_ids"], encoded["labels"]
    targets = [i for i, label in enumerate(labels) if label != IGNORE]
    assert all(labels[i] == ids[i] for i in targets)
    # Target tokens, grouped into runs, are exactly the three assistant turns, each with its EOS.
    runs, current = [], [targets[0]]
    for i in targets[1:]:
        if i == current[-1] + 1:
            current.append(i)
        else:
            runs.append(current)
            current = [i]
    runs.append(current)
    decoded = [tokenizer.decode([ids[i] for i in run]) for run in runs]
    assert decoded == [" I've read this text.</s>", ' ["Bill Gates"]</s>', " []</s>"]
    assert ids[runs[0][-1]] == tokenizer.eos_token_id
    # Everything else (BOS, system line, passage, questions) is masked.
    masked = tokenizer.decode([ids[i] for i in range(len(ids)) if labels[i] == IGNORE], skip_special_tokens=True)
    assert "What describes person in the text?" in masked and TEXT in masked and "[" not in masked


def test_prompt_tokens_equal_what_inference_tokenises(tokenizer):
    template = UniNERTemplate(separator=tokenizer.eos_token)
    encoded = encode_conversation(tokenizer, template, *read_conversation(RECORD))
    prompt = template.prompt(TEXT, "person")
    at_inference = tokenizer(prompt)["input_ids"]
    assert encoded["input_ids"][: len(at_inference)] == at_inference
    assert encoded["labels"][len(at_inference)] != IGNORE  # the answer starts right after


def test_collator_pads_right_and_ignores_padding():
    batch = PadCollator(0)(
        [{"input_ids": [1, 5, 6], "labels": [-100, 5, 6]}, {"input_ids": [1, 7], "labels": [-100, 7]}]
    )
    assert batch["input_ids"].tolist() == [[1, 5, 6], [1, 7, 0]]
    assert batch["labels"].tolist() == [[-100, 5, 6], [-100, 7, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


def test_training_defaults_are_the_papers():
    config = load_train_config(PACKAGED / "train.cfg")
    training = config["training"]
    assert (training["learning_rate"], training["epochs"], training["warmup_ratio"]) == (2e-5, 3, 0.04)
    assert (training["lr_scheduler"], training["max_length"], training["weight_decay"]) == ("cosine", 1024, 0.0)
    assert training["per_device_batch_size"] * training["gradient_accumulation_steps"] == 256
    assert config["model"]["gradient_checkpointing"] is True and config["lora"]["enabled"] is False


@pytest.mark.slow
@pytest.mark.parametrize("lora", [False, True])
def test_tiny_student_trains_saves_and_runs_in_universal_ner(tmp_path, tiny_model_path, lora):
    import spacy
    from transformers import AutoModelForCausalLM

    data = tmp_path / "train.json"
    data.write_text(json.dumps([RECORD] * 4))
    overrides = {
        "training.max_steps": 2,
        "training.save_strategy": "no",
        "training.progress": False,
        "lora.enabled": lora,
    }
    config = load_train_config(CONFIGS / "distill-smoke.cfg", overrides)
    summary = run_train(data, tmp_path / "student", config, base_model=tiny_model_path)
    assert summary["steps"] == 2 and summary["lora"] is lora and summary["template_separator"] == "</s>"
    student = tmp_path / "student"
    assert not (student / "adapter_config.json").exists()  # LoRA merged: a plain causal LM
    AutoModelForCausalLM.from_pretrained(student)

    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["person"],
            "max_new_tokens": 8,
            "model": {"@uniner_backends": "spacy_universalner.HuggingFace.v1", "name": str(student), "device": "cpu"},
        },
    )
    doc = nlp(TEXT)
    assert len(doc._.uniner_responses) >= 1


@pytest.mark.slow
def test_bf16_trains_on_a_cpu_with_float32_weights(tmp_path, tiny_model_path):
    """configs/train-smollm2.cfg asks for bf16: on a machine without a GPU that is CPU autocast, not a refusal."""
    import torch
    from transformers import AutoModelForCausalLM

    if torch.cuda.is_available():
        pytest.skip("checks the CPU path")
    data = tmp_path / "train.json"
    data.write_text(json.dumps([RECORD] * 4))
    overrides = {
        "training.max_steps": 1,
        "training.save_strategy": "no",
        "training.progress": False,
        "training.precision": "bf16",
    }
    summary = run_train(
        data,
        tmp_path / "student",
        load_train_config(CONFIGS / "distill-smoke.cfg", overrides),
        base_model=tiny_model_path,
    )
    assert summary["steps"] == 1
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "student")
    assert next(saved.parameters()).dtype == torch.float32  # AdamW updated float32 weights


@pytest.mark.parametrize(
    "installed,lora,named",
    [
        ({"accelerate": "0.30.0"}, False, "accelerate>=1.1.0 (installed: 0.30.0)"),
        ({"accelerate": None}, False, "accelerate>=1.1.0 (not installed)"),
        ({"peft": None}, True, "peft>=0.10 (not installed)"),
    ],
)
def test_train_names_the_missing_extra_before_it_starts(tmp_path, monkeypatch, installed, lora, named):
    """Without accelerate, transformers' Trainer fails with an 80-line traceback after the model is loaded."""
    import importlib.metadata

    from typer.testing import CliRunner

    from spacy_universalner.cli import app

    real_version = importlib.metadata.version

    def version(package):
        if package in installed:
            if installed[package] is None:
                raise importlib.metadata.PackageNotFoundError(package)
            return installed[package]
        return real_version(package)

    monkeypatch.setattr(importlib.metadata, "version", version)
    monkeypatch.setattr("transformers.utils.import_utils.ACCELERATE_MIN_VERSION", "1.1.0")
    data = tmp_path / "train.json"
    data.write_text(json.dumps([RECORD]))
    args = [
        "train",
        str(data),
        str(tmp_path / "student"),
        "--config",
        str(CONFIGS / "distill-smoke.cfg"),
        "--base-model",
        "no-such-model",
        "--lora" if lora else "--full",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert named in message and 'install the [train] extra, pip install -e ".[train]"' in message
    assert "Traceback" not in result.output and not (tmp_path / "student").exists()
