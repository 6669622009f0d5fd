"""The command line as a new user meets it: help at once, clear failures, output that keeps what came in."""
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "spacy")


@pytest.mark.parametrize("args", [["--help"], ["extract", "--help"], ["evaluate", "--help"], ["train", "--help"]])
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
