"""The train and train-span configs: a schema with the defaults, unknown keys and wrong types refused in one line."""

from dataclasses import fields
from pathlib import Path

import pytest

from spacy_universalner.distill.span import SpanDataSettings, SpanTrainConfig, SpanTrainingSettings
from spacy_universalner.distill.train import (
    TrainConfig,
    TrainConfigError,
    as_config,
    load_train_config,
    run_train,
    training_arguments,
)

PACKAGED = Path(__file__).resolve().parents[1] / "spacy_universalner" / "configs"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_the_shipped_configs_write_out_exactly_the_schema_defaults():
    """The .cfg files are for reading; the defaults live in the schema. Every key is written, with its value."""
    train = load_train_config(PACKAGED / "train.cfg")
    assert TrainConfig.from_config(train) == TrainConfig()
    assert train == as_config(TrainConfig())
    span = load_train_config(PACKAGED / "train-span.cfg")
    assert SpanTrainConfig.from_config(span) == SpanTrainConfig()
    assert span == as_config(SpanTrainConfig())


@pytest.mark.parametrize("name", ["train-mini.cfg", "distill-smoke.cfg", "train-smollm2.cfg"])
def test_the_project_train_configs_validate(name):
    TrainConfig.from_config(load_train_config(CONFIGS / name))


def test_the_project_span_configs_validate():
    contrast = SpanTrainConfig.load(CONFIGS / "train-span-contrast.cfg")
    assert contrast.model.init == "training/uniner-span" and contrast.data.keep_typed_negatives
    typed = SpanTrainConfig.load(CONFIGS / "train-span-type-contrast.cfg")
    assert typed.model.init == "training/uniner-span-contrast" and typed.training.type_contrast == 1.0


def test_a_partial_config_gets_the_schema_defaults():
    config = TrainConfig.from_config({"training": {"max_steps": 4}})
    assert config.training.max_steps == 4 and config.training.learning_rate == 2e-5
    assert config.lora == TrainConfig().lora
    span = SpanTrainConfig.from_config({"data": {"max_words": 8}})
    assert span.data == SpanDataSettings(max_words=8) and span.training == SpanTrainingSettings()


@pytest.mark.parametrize(
    "config,message",
    [
        (
            {"training": {"max_step": 4}},
            "Unknown setting [training] max_step; did you mean max_steps? [training] takes: epochs, learning_rate",
        ),
        (
            {"lora": {"rank": 8}},
            "Unknown setting [lora] rank; [lora] takes: enabled, r, alpha, dropout, target_modules.",
        ),
        ({"trainig": {}}, "Unknown section [trainig] in the train config; did you mean [training]?"),
        ({"training": {"max_steps": "4"}}, "[training] max_steps must be an integer, got '4' (str)."),
        ({"training": {"max_steps": 4.5}}, "[training] max_steps must be an integer, got 4.5 (float)."),
        ({"training": {"progress": 1}}, "[training] progress must be true or false, got 1 (int)."),
        ({"training": {"precision": "bf32"}}, "[training] precision must be one of 'auto', 'bf16', 'fp16', 'fp32'"),
        ({"model": {"dropout": "high"}}, "[model] dropout must be a number or null, got 'high' (str)."),
        ({"model": {"base": None}}, "[model] base must be a string, got None"),
        ({"training": 3}, "[training] must be a block of settings, got 3."),
    ],
)
def test_train_refuses_unknown_keys_and_wrong_types_in_one_line(config, message):
    with pytest.raises(TrainConfigError) as err:
        TrainConfig.from_config(config)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "config,message",
    [
        ({"training": {"bf_16": True}}, "Unknown setting [training] bf_16; did you mean bf16?"),
        # A TrainingArguments key the schema does not allow is not passed through.
        ({"training": {"dataloader_num_workers": 2}}, "Unknown setting [training] dataloader_num_workers;"),
        ({"data": {"max_word": 8}}, "Unknown setting [data] max_word; did you mean max_words?"),
        ({"model": {"max_width": "12"}}, "[model] max_width must be an integer, got '12' (str)."),
        (
            {"lora": {}},
            "Unknown section [lora] in the train-span config; its sections are [model], [data], [training].",
        ),
    ],
)
def test_train_span_refuses_unknown_keys_and_wrong_types_in_one_line(config, message):
    with pytest.raises(TrainConfigError) as err:
        SpanTrainConfig.from_config(config)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_integers_are_numbers_and_lists_are_allowed_where_the_schema_says():
    config = TrainConfig.from_config(
        {
            "training": {"learning_rate": 1, "report_to": ["tensorboard"]},
            "lora": {"target_modules": ["q_proj", "v_proj"]},
        }
    )
    assert config.training.learning_rate == 1 and config.lora.target_modules == ["q_proj", "v_proj"]


def test_command_line_overrides_still_work_and_a_misspelt_one_is_named(tmp_path):
    from spacy.cli._util import parse_config_overrides

    overrides = parse_config_overrides(["--training.max_steps=4", "--training.progress", "false", "--lora.enabled"])
    config = TrainConfig.from_config(load_train_config(PACKAGED / "train.cfg", overrides))
    assert (config.training.max_steps, config.training.progress, config.lora.enabled) == (4, False, True)
    span = SpanTrainConfig.from_config(
        load_train_config(PACKAGED / "train-span.cfg", {"training.bf16": False, "data.partial_negatives": 0.5})
    )
    assert span.training.bf16 is False and span.data.partial_negatives == 0.5
    # A new key in a known section: confection adds it, the schema refuses it.
    with pytest.raises(TrainConfigError, match=r"Unknown setting \[training\] max_step; did you mean max_steps\?"):
        TrainConfig.from_config(load_train_config(PACKAGED / "train.cfg", {"training.max_step": 4}))
    # An unknown section: confection refuses it in a multi-line error; this one names it.
    with pytest.raises(
        TrainConfigError,
        match=r"Unknown section \[trainig\] in the override --trainig.max_steps; "
        r"did you mean \[training\]\?",
    ):
        load_train_config(PACKAGED / "train.cfg", {"trainig.max_steps": 4})


def test_load_reads_a_file_with_overrides_and_checks_it_against_the_schema():
    """``TrainConfig.load`` and ``SpanTrainConfig.load``: one loader, the file read then checked."""
    assert TrainConfig.load(PACKAGED / "train.cfg", {"training.max_steps": 4}) == TrainConfig.from_config(
        load_train_config(PACKAGED / "train.cfg", {"training.max_steps": 4})
    )
    assert SpanTrainConfig.load(PACKAGED / "train-span.cfg").training == SpanTrainingSettings()
    with pytest.raises(TrainConfigError, match=r"Unknown section \[lora\] in the train-span config"):
        SpanTrainConfig.load(PACKAGED / "train.cfg")


def test_run_train_refuses_a_bad_config_before_loading_anything(tmp_path):
    """No tokenizer or model is looked up (the base model does not exist): the config is checked first."""
    data = tmp_path / "train.json"
    data.write_text("[]")
    with pytest.raises(TrainConfigError, match="max_step; did you mean max_steps"):
        run_train(data, tmp_path / "out", {"training": {"max_step": 4}}, base_model="no/such-model")
    assert not (tmp_path / "out").exists()


def test_run_train_span_refuses_a_bad_config_before_loading_anything(tmp_path):
    from spacy_universalner.distill.span import run_train_span

    with pytest.raises(TrainConfigError, match=r"\[training\] max_steps must be an integer"):
        run_train_span(tmp_path / "missing.json", tmp_path / "out", {"training": {"max_steps": "many"}})


def test_training_arguments_pass_on_only_the_schemas_settings(tmp_path):
    pytest.importorskip("transformers")
    config = TrainConfig()
    arguments = training_arguments(tmp_path, config.model, config.training, False, False)
    assert "progress" not in arguments and "precision" not in arguments and arguments["disable_tqdm"] is False
    assert arguments["max_steps"] == -1 and arguments["save_steps"] == 200
    span = SpanTrainingSettings().training_arguments()
    ours = {"seed", "progress", "torch_threads", "type_contrast"}
    assert not ours & set(span)
    assert set(span) == {f.name for f in fields(SpanTrainingSettings)} - ours
