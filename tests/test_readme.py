"""The README's quick start and the distillation page (docs/distillation.md), command by command, so that they
stay true.

Every shell command in those two sections is either run here, offline (at a tiny size where the README's
takes minutes, each reduction said where it is made), or listed in ``NOT_RUN`` with the reason: an install,
the test suite itself, a GPU, an API key, the hub, or a run of many minutes that another test covers at a
tiny size. A command added to them fails ``test_every_command_is_run_here_or_skipped_for_a_reason``
until this file says which. Claims of the README and its docs/ pages that concern single commands are checked
here too.
"""

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
import srsly
from typer.testing import CliRunner

from spacy_universalner.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf8")
DOCS = ROOT / "docs"
TESTS = Path(__file__).resolve().parent


def section(start: str, end: str, text: str = README) -> str:
    """The README (or ``text``, a docs/ page) from the line starting with ``start`` up to the heading ``end``."""
    begin = text.index(start)
    return text[begin : text.index(end, begin)]


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf8")


QUICK_START = section("# spacy-universalner", "\n## What it is")
DISTILLATION = section("# Distil your own student", "\n## Rebuild the packaged student", page("distillation.md"))


def shell_commands(text: str) -> List[str]:
    """The commands of the ```bash blocks: continuation lines joined, comments dropped, `a && b` split."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)\n```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"(^|\s+)#.*$", "", line).strip()  # no README command has a '#' inside quotes
            commands += [part.strip() for part in line.split(" && ") if part.strip()]
    return commands


def without_optional(command: str) -> List[str]:
    """The command's words, the README's ``[--optional]`` parts left out (they are checked against --help)."""
    return shlex.split(re.sub(r"\s\[[^\]]*\]", "", command))


def optional_parts(command: str) -> List[str]:
    return re.findall(r"\[([^\]]*)\]", command)


#: Commands not run here, by how they start, and why.
NOT_RUN = {
    "python3 -m venv .venv": "sets up an environment",
    ". .venv/bin/activate": "sets up an environment",
    "pip install": "an install",
    "python -m pytest": "the test suite itself",
    "python -m spacy_universalner extract --labels person,organization,location": (
        "run offline by tests/test_uniner_span.py::test_the_readmes_main_job_runs_offline_and_prints_the_three_names"
    ),
    "spacy project run distill .": "annotates with gpt-3.5-turbo: needs an API key (its vars are checked below)",
    "export OPENAI_API_KEY": "an API key",
    "accelerate launch": "8 GPUs with FSDP",
    "python -m spacy_universalner distill convert-gguf training/smollm2": (
        "87 s and a 517 MiB folder: tests/test_gguf.py::test_convert_gguf_command runs it on a tiny GGUF file"
    ),
    "spacy project run smollm2": "about 45 minutes of training and evaluation on 2 CPU cores",
}
#: Commands run below, by how they start.
RUN_HERE = (
    "spacy project run distill-smoke",
    "python -m spacy_universalner distill sample",
    "python -m spacy_universalner distill annotate",
    "python -m spacy_universalner distill build",
    "python -m spacy_universalner distill train",
    "python -m spacy_universalner extract --model training/student",
)


def _not_run_reason(command: str):
    return next((why for start, why in NOT_RUN.items() if command.startswith(start)), None)


def test_every_command_is_run_here_or_skipped_for_a_reason():
    commands = shell_commands(QUICK_START) + shell_commands(DISTILLATION)
    assert len(commands) >= 20  # the parser found the blocks
    unaccounted = [c for c in commands if not _not_run_reason(c) and not c.startswith(RUN_HERE)]
    assert unaccounted == []
    for start in RUN_HERE:
        assert sum(c.startswith(start) for c in commands) == 1, start


def test_the_tests_that_run_skipped_commands_elsewhere_exist():
    for why in NOT_RUN.values():
        for path, name in re.findall(r"(tests/\w+\.py)::(\w+)", why):
            assert f"def {name}(" in (ROOT / path).read_text(encoding="utf8"), (path, name)


def test_the_distill_workflow_takes_the_vars_the_readme_sets():
    command = next(c for c in shell_commands(DISTILLATION) if c.startswith("spacy project run distill ."))
    project = srsly.read_yaml(ROOT / "project.yml")
    assert "distill" in project["workflows"]
    for var in re.findall(r"--vars\.(\w+)", command):
        assert var in project["vars"], var


def _readme_command(start: str) -> str:
    return next(c for c in shell_commands(DISTILLATION) if c.startswith(start))


def _env():
    bin_dir = str(Path(sys.executable).parent)  # weasel runs "python": this environment's
    return {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """`spacy project run distill-smoke` in a copy of the project, as the README says, at a reduced size:
    10 passages and 4 training steps instead of 40 and 40. Its floor is six processes that import spaCy, torch and
    transformers (weasel's and the steps'): 90-125 s measured on 2 cores at a load average of 5."""
    project = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "project.yml", project / "project.yml")
    shutil.copytree(ROOT / "configs", project / "configs")
    shutil.copytree(ROOT / "assets_src", project / "assets_src")
    config = project / "configs" / "distill-smoke.cfg"
    config.write_text(re.sub(r"(?m)^max_steps = \d+$", "max_steps = 4", config.read_text()))
    command = shlex.split(_readme_command("spacy project run distill-smoke"))
    assert command == ["spacy", "project", "run", "distill-smoke"]
    done = subprocess.run(
        [sys.executable, "-m", *command, ".", "--vars.smoke_n_passages", "10"],
        cwd=project,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    return project


@pytest.mark.slow
def test_distill_smoke_runs_offline_and_its_student_answers_every_passage(smoke):
    passages = list(srsly.read_jsonl(smoke / "corpus" / "smoke" / "passages.jsonl"))
    extracted = list(srsly.read_jsonl(smoke / "metrics" / "smoke" / "student_extract.jsonl"))
    assert len(passages) == 10 and len(extracted) == 10
    stats = srsly.read_json(smoke / "metrics" / "smoke" / "build_stats.json")
    assert stats["passages"] > 0 and stats["mentions"] > 0
    assert (smoke / "training" / "smoke" / "student" / "config.json").exists()


def _invoke(args: List[str]):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result


def _check_optional_parts(command: str, help_args: List[str]):
    """Each ``[--option value]`` the README shows exists: in the command's --help, or as a config override."""
    listing = CliRunner().invoke(app, [*help_args, "--help"]).output
    for part in optional_parts(command):
        option = part.split()[0]
        if option.count(".") == 1 and option.startswith("--training."):  # train's config overrides
            assert (
                option[len("--training.") :] in (ROOT / "spacy_universalner" / "configs" / "train.cfg").read_text()
            ), option
        else:
            assert option in listing, (command, option)


@pytest.mark.slow
def test_the_distillation_steps_one_by_one(tiny_model_path, tmp_path, monkeypatch):
    """The README's four steps and the student's use, each command as written but where a substitution is noted."""
    from spacy_universalner.testing import FakeOpenAIServer

    base = tiny_model_path  # a tiny random LLaMA-shaped model, for the 7B hub model
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    (tmp_path / "my_corpus").mkdir()
    shutil.copy(ROOT / "assets_src" / "distill-smoke" / "labelled.jsonl", tmp_path / "my_corpus" / "docs.jsonl")
    monkeypatch.chdir(tmp_path)

    # 1. sample: --tokenizer huggyllama/llama-7b needs the hub; the tiny student's tokenizer stands in.
    sample = _readme_command("python -m spacy_universalner distill sample")
    args = without_optional(sample)[3:]
    assert args[args.index("--tokenizer") + 1] == "huggyllama/llama-7b"
    args[args.index("--tokenizer") + 1] = base
    _invoke(args)
    passages = list(srsly.read_jsonl("corpus/passages.jsonl"))
    assert passages and all(set(p) == {"id", "text"} for p in passages)

    # 2. annotate: a local fake OpenAI-compatible server instead of api.openai.com; the options as written.
    annotate = _readme_command("python -m spacy_universalner distill annotate")
    _check_optional_parts(annotate, ["distill", "annotate"])
    args = without_optional(annotate)[3:] + [w for part in optional_parts(annotate) for w in part.split()]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAIServer() as server:
        args[args.index("--base-url") + 1] = server.url
        result = _invoke([*args, "--no-progress"])
    assert f"0 failed, 0 of {len(passages)} left" in result.output
    assert len(list(srsly.read_jsonl("corpus/annotations.jsonl"))) == len(passages)

    # 3. build, as written.
    _invoke(without_optional(_readme_command("python -m spacy_universalner distill build"))[3:])
    assert srsly.read_json("metrics/build_stats.json")["passages"] == len(passages)

    # 4. train: the tiny student for huggyllama/llama-7b, and 2 steps of configs/train.cfg instead of the README's 100.
    train = _readme_command("python -m spacy_universalner distill train")
    _check_optional_parts(train, ["distill", "train"])
    args = without_optional(train)[3:]
    args[args.index("--base-model") + 1] = base
    _invoke([*args, "--training.max_steps", "2"])
    assert (tmp_path / "training" / "student" / "uniner_training.json").exists()

    # The student by path, as written.
    result = _invoke(
        without_optional(_readme_command("python -m spacy_universalner extract --model training/student"))[3:]
    )
    assert "Could not load" not in result.output


# -- single claims of the README ---------------------------------------------------------------------------
def test_the_uniner_f1_example_prints_what_the_readme_says():
    block = next(b for b in re.findall(r"```python\n(.*?)\n```", page("evaluation.md"), re.S) if "uniner_f1(" in b)
    code = [line for line in block.splitlines() if not line.startswith("#")]
    printed = next(line for line in block.splitlines() if line.startswith("# {"))
    namespace: dict = {}
    exec("\n".join(code[:-1]), namespace)
    assert eval(code[-1], namespace) == ast.literal_eval(printed[2:])


def test_the_readmes_misspelt_model_gets_a_did_you_mean():
    from spacy_universalner.pretrained import load_error

    typo = re.search(
        r"a name close to a packaged\s+model's \(`([^`]+)`\) gets a \"did you mean\"", page("reliability.md")
    ).group(1)
    error = str(load_error(typo, "weights", OSError("not found"), offline="HF_HUB_OFFLINE is set"))
    assert "Did you mean 'uniner-span'" in error


def test_the_readme_lists_every_backend_that_ships_and_the_default():
    import spacy_universalner.backends  # noqa: F401  (registers them; `import spacy_universalner` leaves them lazy)
    from spacy_universalner.registry import uniner_backends

    shipped = sorted(
        name
        for name in uniner_backends.get_all()  # not the test stand-ins of spacy_universalner.testing
        if name.startswith("spacy_universalner.") and not name.startswith("spacy_universalner.testing.")
    )
    backends = section("## Backends", "\n## ")
    listed = re.findall(r"^- `(spacy_universalner\.[\w.]+)`", backends, re.M)
    assert sorted(listed) == shipped
    words = {3: "three", 4: "four", 5: "five", 6: "six"}
    assert f"; {words[len(shipped)]} ship with the package" in backends
    default = next(line for line in backends.splitlines() if "(the default" in line)
    assert "spacy_universalner.GLiNER.v1" in default  # the component's default model block
