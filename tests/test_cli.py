"""The command line as a new user meets it: help at once, clear failures, output that keeps what came in."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "spacy")


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["extract", "--help"],
        ["evaluate", "--help"],
        ["train", "--help"],
        ["distill", "--help"],
        ["distill", "train", "--help"],
    ],
)
def test_help_imports_neither_spacy_nor_torch_nor_transformers(args):
    """Importing them takes seconds; a help text needs none of them."""
    code = (
        "import sys\nfrom spacy_universalner.cli import app\n"
        f"try:\n    app({args!r})\nexcept SystemExit:\n    pass\n"
        f"print('loaded:', sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "loaded: []"


def test_build_imports_neither_spacy_nor_torch(tmp_path):
    """Turning answers into conversations is string work: it starts in a fraction of a second."""
    import json

    source = tmp_path / "pile.json"
    source.write_text(
        json.dumps(
            [
                {
                    "conversations": [
                        {"from": "human", "value": "Text: Bill Gates founded Microsoft."},
                        {"from": "gpt", "value": "I've read this text."},
                        {"from": "human", "value": "What describes person in the text?"},
                        {"from": "gpt", "value": '["Bill Gates"]'},
                    ]
                }
            ]
        )
    )
    args = ["build", str(source), str(tmp_path / "train.json"), "--negatives", "0"]
    code = (
        "import sys\nfrom spacy_universalner.cli import app\n"
        f"try:\n    app({args!r})\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
        f"print('loaded:', sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "train.json").exists()
    assert done.stdout.strip().splitlines()[-1] == "loaded: []"


def _extract(*args):
    from typer.testing import CliRunner

    from spacy_universalner.cli import app

    return CliRunner().invoke(app, ["extract", *map(str, args)])


CACHED_MODEL = "no-such-org/no-such-model"  # every prompt below is in the cache: nothing is loaded


def _cache(tmp_path, answers):
    """A response cache answering ``{(text, label): answer}`` for CACHED_MODEL."""
    from spacy_universalner.cache import ResponseCache
    from spacy_universalner.prompt import UniNERTemplate

    path = tmp_path / "responses.jsonl"
    template = UniNERTemplate()
    ResponseCache(path).add(
        CACHED_MODEL, [(template.prompt(text, label), answer) for (text, label), answer in answers.items()]
    )
    return path


def test_extract_jsonl_output_keeps_every_input_field(tmp_path):
    """So the entities join back to the input by its id (or any other field)."""
    import json

    records = [{"id": "n1", "text": "Bill Gates founded Microsoft.", "source": "wiki"}, {"id": 2, "text": "Paris."}]
    cache = _cache(tmp_path, {(records[0]["text"], "person"): '["Bill Gates"]', (records[1]["text"], "person"): "[]"})
    source, target = tmp_path / "notes.jsonl", tmp_path / "entities.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf8")
    result = _extract(
        "--model", CACHED_MODEL, "--labels", "person", "--cache", cache, "--input", source, "--output", target
    )
    assert result.exit_code == 0, result.output
    written = [json.loads(line) for line in target.read_text(encoding="utf8").splitlines()]
    assert [{k: v for k, v in w.items() if k not in ("ents", "unaligned")} for w in written] == records
    assert written[0]["ents"] == [{"text": "Bill Gates", "label": "person", "start": 0, "end": 10}]
    assert written[1]["ents"] == [] and written[1]["unaligned"] == []


def test_extract_shows_each_text_and_its_entities_without_a_stray_none(tmp_path):
    texts = ["Bill Gates founded Microsoft.", "Paris is nice."]
    cache = _cache(tmp_path, {(texts[0], "person"): '["Bill Gates"]', (texts[1], "person"): "[]"})
    result = _extract("--model", CACHED_MODEL, "--labels", "person", "--cache", cache, *texts)
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    assert any(line.split()[:3] == ["Bill", "Gates", "person"] for line in lines)
    assert "(no entities)" in lines
    assert "None" not in lines


@pytest.mark.parametrize(
    "labels,message",
    [
        (",", "`labels` is empty (got ',')"),
        (" , ,", "`labels` is empty (got ' , ,')"),
        ("person,location,person", "Duplicate label 'person' in `labels` (got 'person,location,person')"),
    ],
)
def test_extract_says_which_labels_it_got_when_they_are_unusable(labels, message):
    result = _extract("--model", "uniner-span", "--labels", labels, "Bill Gates")
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())  # wasabi wraps long lines
    assert "Traceback" not in result.output


def test_extract_with_a_mistyped_packaged_name_fails_at_once_with_a_suggestion():
    result = _extract("--model", "uniner-spn", "Bill Gates")
    assert result.exit_code == 1
    assert "Did you mean 'uniner-span'" in " ".join(result.output.split())
    assert "Traceback" not in result.output and "Retrying" not in result.output


def test_download_of_an_unreachable_url_fails_in_one_line_and_leaves_no_file(tmp_path):
    import socket

    from typer.testing import CliRunner

    from spacy_universalner.cli import app

    with socket.socket() as probe:  # a port nothing listens on: the connection is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dest = tmp_path / "assets" / "pile-ner-type.json"
    result = CliRunner().invoke(app, ["download", f"http://127.0.0.1:{port}/train.json", str(dest), "--timeout", "5"])
    assert result.exit_code == 1
    assert f"Could not download {dest}: 127.0.0.1:{port} cannot be reached (ConnectionError)" in " ".join(
        result.output.split()
    )
    assert "Traceback" not in result.output
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()


def test_download_writes_the_file_and_keeps_it_on_a_rerun(tmp_path):
    import functools
    import http.server
    import threading

    from typer.testing import CliRunner

    from spacy_universalner.cli import app

    served = tmp_path / "served"
    served.mkdir()
    (served / "train.json").write_text('[{"conversations": []}]', encoding="utf8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/train.json"
        dest = tmp_path / "assets" / "pile-ner-type.json"
        assert CliRunner().invoke(app, ["download", url, str(dest)]).exit_code == 0
        assert dest.read_text(encoding="utf8") == '[{"conversations": []}]'
        missing = CliRunner().invoke(app, ["download", url.replace("train", "nope"), str(tmp_path / "x.json")])
        assert missing.exit_code == 1 and "answered 404" in missing.output
        server.shutdown()
        again = CliRunner().invoke(app, ["download", url, str(dest)])  # the server is gone: the file is kept
        assert again.exit_code == 0 and "already there" in again.output
    finally:
        server.server_close()


def test_every_project_asset_is_a_benchmark_copy_with_a_checksum():
    """`spacy project assets --extra` can then check them all offline; downloads that need the network are
    project commands (pile-ner), which fail in one line instead of weasel's traceback."""
    from pathlib import Path

    import srsly

    project = srsly.read_yaml(Path(__file__).parents[1] / "project.yml")
    assert project["assets"] and all(asset.get("checksum") and asset.get("extra") for asset in project["assets"])
    commands = {command["name"]: command for command in project["commands"]}
    assert "assets/pile-ner-type.json" in commands["pile-ner"]["outputs"]
    assert "assets/pile-ner-type.json" in commands["build-pile-ner"]["deps"]


def test_the_default_configs_ship_in_the_package_and_init_config_writes_a_copy(tmp_path):
    """gold, train and train-span work outside a checkout: their configs are package data, copied out on request."""
    from typer.testing import CliRunner

    from spacy_universalner.cli import app
    from spacy_universalner.cli.distill import CONFIG_NAMES, DEFAULT_CONFIGS
    from spacy_universalner.distill.train import load_train_config

    assert DEFAULT_CONFIGS.parent.name == "spacy_universalner"
    assert all((DEFAULT_CONFIGS / name).is_file() for name in CONFIG_NAMES.values())
    runner = CliRunner()
    done = runner.invoke(app, ["init-config", "train-span", str(tmp_path / "span.cfg")])
    assert done.exit_code == 0, done.output
    assert load_train_config(tmp_path / "span.cfg", {})["training"]["max_steps"] > 0
    again = runner.invoke(app, ["init-config", "train-span", str(tmp_path / "span.cfg")])
    assert again.exit_code == 1 and "exists" in again.output
    unknown = runner.invoke(app, ["init-config", "trian", str(tmp_path / "x.cfg")])
    assert unknown.exit_code == 1 and "train-span" in unknown.output
