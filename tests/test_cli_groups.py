"""The command line's layout (issue 26 item 2): top-level commands, the ``distill`` group, the old names of its
steps as hidden aliases, and the ``spacy-universalner`` console script."""

import configparser
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from spacy_universalner.cli import app

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = ["extract", "evaluate", "download", "init-config"]
DISTILL_STEPS = [
    "sample",
    "annotate",
    "gold",
    "build",
    "train",
    "train-span",
    "init-student",
    "export-student",
    "export-span",
    "convert-gguf",
]


def _section(listing: str, title: str):
    """The command names of one section of a --help listing."""
    lines = listing.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    names = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        if line.startswith("  ") and not line.startswith("   "):
            names.append(line.split()[0])
    return names


def test_help_shows_the_commands_the_groups_and_the_distill_steps():
    listing = CliRunner().invoke(app, ["--help"]).output
    assert _section(listing, "Commands:") == TOP_LEVEL
    assert _section(listing, "Groups:") == ["distill"]
    assert _section(listing, "Distill commands (distill COMMAND):") == DISTILL_STEPS


def test_distill_help_lists_every_step():
    result = CliRunner().invoke(app, ["distill", "--help"])
    assert result.exit_code == 0
    assert _section(result.output, "Commands:") == DISTILL_STEPS


def test_every_old_name_is_a_hidden_alias_with_the_same_options():
    group = typer.main.get_command(app)
    ctx = typer.Context(group)
    distill = group.get_command(ctx, "distill")
    for step in DISTILL_STEPS:
        alias, command = group.get_command(ctx, step), distill.get_command(ctx, step)
        assert alias is not None and alias.hidden, step
        assert not command.hidden, step
        assert [p.name for p in alias.params] == [p.name for p in command.params], step
        assert alias.help == command.help, step


def _conversations(path: Path) -> Path:
    turns = [
        {"from": "human", "value": "Text: Bill Gates founded Microsoft."},
        {"from": "gpt", "value": "I've read this text."},
        {"from": "human", "value": "What describes person in the text?"},
        {"from": "gpt", "value": '["Bill Gates"]'},
    ]
    path.write_text(json.dumps([{"conversations": turns}]))
    return path


def test_the_old_name_build_does_what_distill_build_does(tmp_path):
    source = _conversations(tmp_path / "pile.json")
    runner = CliRunner()
    new = runner.invoke(app, ["distill", "build", str(source), str(tmp_path / "new.json"), "--negatives", "0"])
    old = runner.invoke(app, ["build", str(source), str(tmp_path / "old.json"), "--negatives", "0"])
    assert new.exit_code == 0 and old.exit_code == 0, (new.output, old.output)
    assert (tmp_path / "new.json").read_text() == (tmp_path / "old.json").read_text()
    assert old.stdout.replace("old.json", "new.json") == new.stdout
    assert new.stderr == ""
    assert old.stderr.strip() == "`build` is now `distill build`; the old name will be removed in the next release."


def test_a_failing_step_fails_in_one_message_under_either_name(tmp_path):
    (tmp_path / "empty").mkdir()
    for args in (["distill", "export-student"], ["export-student"]):
        result = CliRunner().invoke(app, [*args, str(tmp_path / "empty"), str(tmp_path / "out")])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert "\u2718" in result.stdout and "Traceback" not in result.output  # wasabi's msg.fail
    unknown = CliRunner().invoke(app, ["init-config", "nope", str(tmp_path / "x.cfg")])
    assert unknown.exit_code == 1 and "No default config 'nope'" in " ".join(unknown.output.split())


def test_setup_cfg_declares_the_console_script():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf8")
    scripts = dict(
        line.split("=", 1) for line in config["options.entry_points"]["console_scripts"].strip().splitlines()
    )
    assert {k.strip(): v.strip() for k, v in scripts.items()} == {"spacy-universalner": "spacy_universalner.cli:main"}


def test_the_console_script_runs_the_same_app_as_python_dash_m(monkeypatch):
    from importlib.metadata import entry_points

    import spacy_universalner.__main__ as dunder_main
    import spacy_universalner.cli as cli

    found = [ep for ep in entry_points(group="console_scripts") if ep.name == "spacy-universalner"]
    if not found:
        pytest.fail("no spacy-universalner console script installed: pip install -e . --no-deps refreshes it")
    main = found[0].load()
    assert main is cli.main is dunder_main.main
    called = []
    monkeypatch.setattr(cli, "app", lambda: called.append(True))
    main()
    assert called == [True]


def test_the_logic_is_importable_without_the_cli():
    import spacy_universalner.cli.extract as cli_extract
    from spacy_universalner import extract
    from spacy_universalner.eval import run

    assert callable(run.evaluate_pipeline) and callable(run.evaluate_benchmarks)
    assert cli_extract.build_pipeline is extract.build_pipeline  # the old import path keeps working
    assert extract.parse_labels("PER=person,ORG=organization") == {"PER": "person", "ORG": "organization"}
    assert extract.parse_labels("person,organization") == "person,organization"
    with pytest.raises(ValueError, match="not semicolons"):
        extract.parse_labels("person;organization")


@pytest.mark.parametrize("step", ["train", "train-span"])
def test_a_bad_training_config_fails_in_one_message_naming_the_setting(tmp_path, step):
    data = _conversations(tmp_path / "pile.json")
    runner = CliRunner()
    override = runner.invoke(app, ["distill", step, str(data), str(tmp_path / "out"), "--training.bogus", "1"])
    assert override.exit_code == 1 and isinstance(override.exception, SystemExit), override.output
    assert "\u2718 Unknown setting [training] bogus;" in override.stdout and "Traceback" not in override.output
    config = tmp_path / "bad.cfg"
    config.write_text("[trainig]\nmax_steps = 4\n")
    from_file = runner.invoke(app, ["distill", step, str(data), str(tmp_path / "out"), "--config", str(config)])
    assert from_file.exit_code == 1 and isinstance(from_file.exception, SystemExit), from_file.output
    assert "Unknown section [trainig] in the train" in " ".join(from_file.stdout.split())  # wasabi wraps lines
    assert "did you mean [training]?" in " ".join(from_file.stdout.split())
    assert not (tmp_path / "out").exists()
