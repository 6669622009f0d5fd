"""``benchmarks/gpu_engine.py``, the prepared GPU check, runs as it will on the device machine (no spaCy there),
here on a CPU at a tiny shape: its equality check and throughput rows must come out of a real run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WITHOUT_SPACY = """
import runpy, sys
sys.modules["spacy"] = None  # `import spacy` raises ImportError, as on the device machine
sys.argv = ["gpu_engine.py", *sys.argv[1:]]
runpy.run_path("benchmarks/gpu_engine.py", run_name="__main__")
"""


@pytest.mark.slow
def test_the_gpu_check_runs_without_spacy_and_reports_equality_and_throughput(tmp_path):
    out = tmp_path / "gpu.json"
    args = [
        "--preset",
        "tiny",
        "--device",
        "cpu",
        "--equal-docs",
        "2",
        "--docs",
        "2",
        "--answer-tokens",
        "4",
        "--repeats",
        "1",
        "--json",
        str(out),
    ]
    run = subprocess.run([sys.executable, "-c", WITHOUT_SPACY, *args], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["equality_float32"]["queries"] == 20
    assert figures["equality_float32"]["equal"] == 20  # the engine is exact on a random model too
    assert figures["throughput_bfloat16"]["engine"]["docs_per_s"] > 0
    assert "engine answers equal generate's" in run.stdout
