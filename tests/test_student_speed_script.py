"""benchmarks/student_speed.py: figures with their spread and the machine's load, written where asked."""

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("gliner")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "student_speed.py"


def test_each_row_reports_median_min_max_of_its_runs_and_the_load_average(tmp_path):
    from spacy_universalner.testing import build_tiny_gliner

    spec = importlib.util.spec_from_file_location("student_speed", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    (tmp_path / "data" / "conll2003").mkdir(parents=True)
    (tmp_path / "data" / "conll2003" / "test.txt").write_text(
        "Bill B-PER\nGates I-PER\nvisited O\nParis B-LOC\n\nMicrosoft B-ORG\ngrew O\n\n", encoding="utf8"
    )
    out = tmp_path / "not-yet" / "speed.json"  # its folder does not exist: the script makes it
    script.main(
        [
            "--data-dir",
            str(tmp_path / "data"),
            "--span-model",
            str(build_tiny_gliner(tmp_path / "tiny")),
            "--span-dtypes",
            "float32",
            "--generative-limit",
            "0",
            "--repeats",
            "3",
            "--json",
            str(out),
        ]
    )
    result = json.loads(out.read_text())
    span = result["rows"][0]
    assert span["runs"] == 3 and span["sentences"] == 2
    assert span["min"] <= span["sentences_per_s"] <= span["max"]
    assert len(result["load_average"]["before"]) == 3 and len(result["load_average"]["after"]) == 3
