"""Paths a new user takes (issue 24) end in a result or in one clear line that names the option to use.

Offline is the common case: a hub id there must fail at once, in one message that names this command's way to
pass a downloaded folder (`--tokenizer`, `--base-model`, a config override), never an option it lacks.
"""

import json
import re
import sys
from pathlib import Path

import pytest
import srsly
from typer.testing import CliRunner

from spacy_universalner import pretrained
from spacy_universalner.cli import app

ROOT = Path(__file__).resolve().parents[1]
HUB_ID = "huggyllama/llama-7b"
sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.fixture
def unreachable_hub(monkeypatch):
    """The hub as on an offline machine without HF_HUB_OFFLINE: one probe fails, nothing else may be asked."""
    import requests

    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(pretrained, "_hub_probes", {})

    def no_network(*args, **kwargs):
        raise requests.ConnectionError("no network")

    monkeypatch.setattr(requests, "head", no_network)


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _one_clear_failure(result, option):
    """Exit 1, the offline reason, this command's option for a folder, and nothing that would mislead."""
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())  # wasabi's msg.fail wraps long lines
    assert "cannot be reached" in output and "not in the local Hugging Face cache" in output
    assert f"`{option} ./my-model`" in output or f"`{option}=./my-model`" in output
    assert "--model ./my-model" not in output and "add_pipe" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # typer's clean exit, no traceback


def test_sample_with_a_hub_tokenizer_offline_names_the_tokenizer_option(tmp_path, unreachable_hub):
    (tmp_path / "raw.txt").write_text("Bill Gates founded Microsoft. He lives in Seattle.")
    result = _invoke("sample", tmp_path / "raw.txt", tmp_path / "passages.jsonl", "--tokenizer", HUB_ID)
    _one_clear_failure(result, "--tokenizer")


def test_train_with_a_hub_base_model_offline_fails_at_once(tmp_path, unreachable_hub):
    data = tmp_path / "train.json"
    srsly.write_json(
        data,
        [
            {
                "conversations": [
                    {"from": "human", "value": "Text: Bill Gates founded Microsoft."},
                    {"from": "gpt", "value": "I've read this text."},
                    {"from": "human", "value": "What describes person in the text?"},
                    {"from": "gpt", "value": '["Bill Gates"]'},
                ]
            }
        ],
    )
    result = _invoke(
        "train", data, tmp_path / "student", "--config", ROOT / "configs" / "distill-smoke.cfg", "--base-model", HUB_ID
    )
    _one_clear_failure(result, "--base-model")
    assert not (tmp_path / "student").exists()


def test_evaluate_with_a_hub_model_offline_names_the_config_override(tmp_path, unreachable_hub):
    """`evaluate` has no --model: the model is the pipeline's, so the hint is the override that sets it."""
    conversation = {
        "conversations": [
            {"from": "human", "value": "Text: Hinton works at Google ."},
            {"from": "gpt", "value": "I've read this text."},
            {"from": "human", "value": "What describes person in the text?"},
            {"from": "gpt", "value": '["Hinton"]'},
        ]
    }
    (tmp_path / "tiny.json").write_text(json.dumps([conversation]))
    benchmarks = tmp_path / "benchmarks.cfg"
    benchmarks.write_text(
        '[paths]\ndata = "nowhere"\n\n[benchmarks]\n\n[benchmarks.tiny]\ntitle = "Tiny"\n\n'
        '[benchmarks.tiny.reader]\n@uniner_readers = "spacy_universalner.uniner_conversations.v1"\n'
        'path = "${paths.data}/tiny.json"\n'
    )
    result = _invoke(
        "evaluate",
        ROOT / "configs" / "benchmarks_pipeline.cfg",
        "--datasets",
        "tiny",
        "--benchmarks",
        benchmarks,
        "--data-dir",
        tmp_path,
        "--output",
        tmp_path / "out",
        f"--components.universal_ner.model.name={HUB_ID}",
    )
    _one_clear_failure(result, "--components.universal_ner.model.name")


def test_the_old_default_uniner_mini_is_named_as_replaced(monkeypatch):
    error = str(pretrained.load_error("uniner-mini", "weights", OSError("404"), offline="HF_HUB_OFFLINE is set"))
    assert "replaced by 'uniner-span'" in error and "hf download" not in error  # it was never a hub id
    assert pretrained.did_you_mean("uniner-mini") == "uniner-span"


@pytest.mark.slow
def test_extract_with_uniner_mini_says_it_was_replaced():
    result = _invoke("extract", "--model", "uniner-mini", "--labels", "person", "Bill Gates founded Microsoft.")
    assert result.exit_code == 1 and "replaced by 'uniner-span'" in result.output, result.output


def test_the_download_command_has_a_whole_line_in_the_help():
    listing = _invoke("--help").output
    line = next(line for line in listing.splitlines() if line.strip().startswith("download "))
    assert "Pile-NER-type" in line and "(e.g." not in line and not line.endswith("...")


def test_the_f1_chart_does_not_call_every_set_zero_shot(tmp_path, monkeypatch):
    """Whether a set was seen in training depends on the model (uniner-span trained on CoNLL-2003)."""
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    from spacy_universalner.eval.report import bar_chart

    titles = []
    monkeypatch.setattr(Axes, "set_title", lambda self, title, *a, **k: titles.append(title))
    scores = {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    bar_chart({"conll2003": {"title": "CoNLL-2003", "uniner": scores}}, "uniner-span", tmp_path / "f1.png")
    assert titles and not any("zero-shot" in title.lower() for title in titles)
    assert (tmp_path / "f1.png").read_bytes()[:4] == b"\x89PNG"


# -- the benchmark scripts ------------------------------------------------------------------------------
def _throughput_main(argv):
    import throughput

    return throughput.main(argv)


def test_throughput_with_a_missing_model_folder_fails_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        _throughput_main(["--model", str(tmp_path / "missing-folder")])
    assert "there is no folder there" in str(stop.value.code) and "missing-folder" in str(stop.value.code)


def test_gpu_check_without_cuda_fails_in_one_line_that_says_how_to_run_it_on_a_cpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the script would build a 7B model")
    import gpu_engine

    with pytest.raises(SystemExit) as stop:
        gpu_engine.main([])
    assert "torch sees no CUDA device" in stop.value.code and "--preset tiny --device cpu" in stop.value.code


@pytest.mark.slow
def test_the_smollm2_speed_step_writes_its_figures_into_a_folder_it_makes(tmp_path, monkeypatch, tiny_model_path):
    """project.yml's smollm2-speed command, on a tiny model and one passage: metrics/smollm2/ need not exist."""
    project = srsly.read_yaml(ROOT / "project.yml")
    script = next(c for c in project["commands"] if c["name"] == "smollm2-speed")["script"][0]
    argv = script.split()[2:]  # after "python benchmarks/throughput.py"
    json_path = argv[argv.index("--json") + 1]
    argv[argv.index("--model") + 1] = tiny_model_path
    argv[argv.index("--docs") + 1] = "1"
    argv[argv.index("--answer-tokens") + 1] = "2"
    monkeypatch.chdir(tmp_path)
    assert not (tmp_path / json_path).parent.exists()
    _throughput_main(argv)
    figures = json.loads((tmp_path / json_path).read_text())
    assert figures["real"]["queries"] == 10 and figures["real"]["methods"]["engine"]["docs_per_s"] > 0


@pytest.mark.slow
def test_quick_throughput_is_one_run_per_method_and_scales_only_the_engine(tmp_path, capsys):
    """--quick is a smoke run (about 4x less timed work than before; 40 s measured at load average 2); here at a tiny
    shape.
    """
    figures = _throughput_main(
        [
            "--quick",
            "--hidden-size",
            "64",
            "--layers",
            "1",
            "--answer-tokens",
            "2",
            "--json",
            str(tmp_path / "new" / "quick.json"),
        ]
    )
    assert figures["repeats"] == 1
    assert list(figures["label_scaling_seconds_per_doc"]) == ["engine"]
    assert set(figures["methods"]) == {"naive", "hf-batched", "engine", "engine+constrained"}
    assert json.loads((tmp_path / "new" / "quick.json").read_text())["speedup"] == pytest.approx(figures["speedup"])
    assert re.search(r"total \d+ s", capsys.readouterr().out)
