"""The packaged student ``uniner-span``: found by name, small enough to ship, runs offline, and gets the README's
examples right.
"""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

from spacy_universalner.eval.benchmarks import load_benchmarks
from spacy_universalner.pretrained import load_error, resolve_model_name
from spacy_universalner.span_weights import INT8_WEIGHTS
from spacy_universalner.types import BackendError

SPAN = Path(resolve_model_name("uniner-span"))
README = Path(__file__).parents[1] / "README.md"


def test_the_name_resolves_to_the_packaged_folder_and_other_names_pass_through():
    assert SPAN.parent.name == "weights" and SPAN.parent.parent.name == "spacy_universalner"
    assert resolve_model_name("Universal-NER/UniNER-7B-type") == "Universal-NER/UniNER-7B-type"
    assert resolve_model_name("./uniner-span") == "./uniner-span"  # a path is a path


def test_it_is_one_small_int8_model_with_its_card_and_metrics():
    files = {path.name: path.stat().st_size for path in SPAN.iterdir()}
    assert {"gliner_config.json", INT8_WEIGHTS, "tokenizer.json", "README.md", "metrics.json"} <= set(files)
    assert not {"model.safetensors", "pytorch_model.bin"} & set(files)  # int8 only
    assert sum(files.values()) <= 50 * 2**20
    assert [p.name for p in SPAN.parent.iterdir() if p.is_dir() and not p.name.startswith("_")] == ["uniner-span"]
    metrics = json.loads((SPAN / "metrics.json").read_text())
    assert {"mit_movie", "crossner_ai"} <= set(metrics["datasets"])


@pytest.fixture(scope="module")
def nlp():
    """The README's first snippet: no model settings at all."""
    nlp = spacy.blank("en")
    nlp.add_pipe("universal_ner", config={"labels": ["person", "organization", "location"]})
    return nlp


def test_the_default_model_is_the_packaged_span_student(nlp):
    backend = nlp.get_pipe("universal_ner").model
    assert type(backend).__name__ == "GLiNERBackend" and backend.name == "uniner-span"


@pytest.mark.slow
def test_the_readme_examples_offline(nlp):
    doc = nlp("Bill Gates founded Microsoft in Albuquerque.")
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Bill Gates", "person"),
        ("Microsoft", "organization"),
        ("Albuquerque", "location"),
    ]
    doc = nlp("Barack Obama visited Paris in 2015.")
    assert [(e.text, e.label_) for e in doc.ents] == [("Barack Obama", "person"), ("Paris", "location")]
    assert all(0.5 <= e._.uniner_score <= 1.0 for e in doc.ents)  # above the model's threshold


def test_a_missing_packaged_file_says_to_reinstall():
    error = load_error("uniner-span", "weights", OSError("no file"))
    assert isinstance(error, BackendError) and "reinstall" in str(error) and "uniner-span" in str(error)


@pytest.mark.slow
def test_the_readmes_main_job_runs_offline_and_prints_the_three_names():
    """The first command of the README, after its install steps, works with no hub access."""
    command = re.search(r"```bash\n(.*?)\n```", README.read_text(encoding="utf8"), re.S).group(1).split(" && ")[-1]
    args = shlex.split(command)
    assert args[:4] == ["python", "-m", "spacy_universalner", "extract"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, *args[1:]], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split()[:3] for line in done.stdout.splitlines()]
    assert ["Bill", "Gates", "person"] in rows and ["Albuquerque", "location", "32"] in rows
    assert ["Microsoft", "organization", "19"] in rows
    assert "Could not load" not in done.stderr


@pytest.mark.slow
def test_the_readmes_first_python_snippet_runs_as_written(capsys):
    snippet = re.search(r"```python\n(.*?)\n```", README.read_text(encoding="utf8"), re.S).group(1)
    exec(compile(snippet, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    # What the README says each print gives: the comment after it, on its line or on the next.
    promised = [line.split("# ", 1)[1] for line in snippet.splitlines() if "# [(" in line]
    assert (
        printed
        == promised
        == [
            "[('Barack Obama', 'person'), ('Paris', 'location')]",
            "[('Apple', 'company'), ('Cupertino', 'location')]",
        ]
    )


# The card's tables list the benchmarks in the packaged definitions' order.
CARD_ORDER = list(load_benchmarks(None, ["zero-shot"]))
OTHER_ORDER = list(load_benchmarks(None, ["other"]))


def _card_row(prefix, columns=slice(2, None)):
    """The figures of the card's table row that starts with ``prefix`` (after the row's name, or in ``columns``)."""
    lines = (SPAN / "README.md").read_text(encoding="utf8").splitlines()
    line = next(line for line in lines if line.startswith(prefix))
    return [float(cell.strip(" *")) for cell in line.split("|")[columns] if cell.strip(" *-")]


def test_the_model_cards_tables_quote_its_committed_metrics():
    """Every F1 in the card's zero-shot rows is the committed metrics file's, rounded: no hand-copied drift."""
    metrics = json.loads((SPAN / "metrics.json").read_text())
    shipped = [round(metrics["datasets"][name]["uniner"]["f1"] * 100, 1) for name in CARD_ORDER]
    assert _card_row("| **uniner-span (this model") == shipped + [round(metrics["average_f1"] * 100, 1)]
    runs = json.loads((SPAN / "runs.json").read_text())
    assert runs["v5"]["zero_shot_full_test_sets"]["avg"] == round(metrics["average_f1"] * 100, 1)  # v5 is shipped
    for run in ("v4", "v3", "v2"):
        chosen = runs[run]["zero_shot_full_test_sets"]
        expected = [chosen[name] for name in CARD_ORDER] + [chosen["avg"]]
        assert _card_row(f"| {run} (0.5 greedy, chosen on dev)") == expected
    other = json.loads((SPAN / "metrics-other.json").read_text())["datasets"]
    shipped_other = [round(other[name]["uniner"]["f1"] * 100, 1) for name in OTHER_ORDER]
    assert _card_row("| **uniner-span, v5 (this model)") == shipped_other
    v4_other = runs["v4"]["other_full_test_sets_all_ten"]
    assert _card_row("| v4, the version before |") == [v4_other[name] for name in OTHER_ORDER]
    for run, prefix in (("v2", "| v2 |"), ("v3", "| v3 |"), ("v4", "| v4 |"), ("v5", "| **v5 (this model)** |")):
        row = runs[run]
        figures = [max(row["dev_grid_avg_100_passages"].values()), row["zero_shot_full_test_sets"]["avg"]]
        figures += [row["other_full_test_sets"]["conll2003"], row["other_full_test_sets"]["jnlpba"]]
        assert _card_row(prefix, columns=slice(3, 7)) == figures
    ai = metrics["datasets"]["crossner_ai"]["uniner"]
    quoted = f"AI: P {ai['precision'] * 100:.1f}, R {ai['recall'] * 100:.1f} with the shipped settings"
    assert quoted in (SPAN / "README.md").read_text(encoding="utf8")
