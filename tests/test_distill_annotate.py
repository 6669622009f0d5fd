"""annotate: every passage answered exactly once, whatever happens to the process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spacy_universalner.distill.annotate import AnnotationLog, OutputLocked, run_annotate
from spacy_universalner.distill.teachers import (
    DEFINITION_INSTRUCTION,
    SYSTEM_MESSAGE,
    TYPE_INSTRUCTION,
    GoldTeacher,
    build_teacher,
    teacher_messages,
)
from spacy_universalner.testing import FakeOpenAIServer


class CountingTeacher:
    """Answers ``[("<first word>", "word")]``; raises ``interrupt`` after ``limit`` answers."""

    name = "counting"

    def __init__(self, limit=None, interrupt=KeyboardInterrupt, concurrency=1):
        self.limit = limit
        self.interrupt = interrupt
        self.concurrency = concurrency
        self.asked = []

    def __call__(self, passage):
        if self.limit is not None and len(self.asked) >= self.limit:
            raise self.interrupt()
        self.asked.append(passage)
        return f'[("{passage.split()[0]}", "word")]'


def write_passages(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"p{i}", "text": f"Word{i} is here."}) + "\n" for i in range(n)))
    return path


def ids_in(path: Path):
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_teacher_messages_are_the_papers_exactly():
    messages = teacher_messages("Bill Gates founded Microsoft.")
    assert messages[0] == {"role": "system", "content": "You are a helpful information extraction system."}
    assert messages[1]["content"] == (
        "Given a passage, your task is to extract all entities and identify their entity types. The output should "
        'be in a list of tuples of the following format: [("entity 1", "type of entity 1"), ... ].'
        "\n\nPassage: Bill Gates founded Microsoft."
    )
    definition = teacher_messages("x", prompt="definition")[1]["content"]
    assert definition == DEFINITION_INSTRUCTION + "\n\nPassage: x" and SYSTEM_MESSAGE and TYPE_INSTRUCTION
    with pytest.raises(ValueError):
        teacher_messages("x", prompt="other")


def test_interrupted_run_resumes_without_asking_or_writing_twice(tmp_path):
    passages = write_passages(tmp_path / "passages.jsonl", 10)
    output = tmp_path / "annotations.jsonl"
    first = CountingTeacher(limit=4)
    with pytest.raises(KeyboardInterrupt):
        run_annotate(passages, output, first, progress=False)
    assert ids_in(output) == ["p0", "p1", "p2", "p3"]

    second = CountingTeacher()
    stats = run_annotate(passages, output, second, progress=False)
    assert stats.already_done == 4 and stats.answered == 6
    assert len(second.asked) == 6 and not set(second.asked) & set(first.asked)
    assert sorted(ids_in(output)) == sorted(f"p{i}" for i in range(10))

    third = CountingTeacher()
    assert run_annotate(passages, output, third, progress=False).answered == 0 and third.asked == []


def test_a_half_written_last_line_is_dropped_and_asked_again(tmp_path):
    passages = write_passages(tmp_path / "passages.jsonl", 3)
    output = tmp_path / "annotations.jsonl"
    run_annotate(passages, output, CountingTeacher(limit=None), progress=False)
    lines = output.read_text().splitlines(keepends=True)
    output.write_text(lines[0] + lines[1] + lines[2][:25])  # killed mid-write
    teacher = CountingTeacher()
    stats = run_annotate(passages, output, teacher, progress=False)
    assert teacher.asked == ["Word2 is here."] and stats.already_done == 2
    assert ids_in(output) == ["p0", "p1", "p2"]  # valid JSONL again


def test_a_complete_last_record_without_newline_is_kept(tmp_path):
    passages = write_passages(tmp_path / "passages.jsonl", 2)
    output = tmp_path / "annotations.jsonl"
    run_annotate(passages, output, CountingTeacher(limit=None), progress=False)
    output.write_text(output.read_text().rstrip("\n"))
    teacher = CountingTeacher()
    run_annotate(passages, output, teacher, progress=False)
    assert teacher.asked == [] and ids_in(output) == ["p0", "p1"]


def test_teacher_failures_are_skipped_and_retried_next_run(tmp_path):
    passages = write_passages(tmp_path / "passages.jsonl", 5)
    output = tmp_path / "annotations.jsonl"
    stats = run_annotate(
        passages, output, CountingTeacher(limit=2, interrupt=RuntimeError), progress=False, max_consecutive_failures=100
    )
    assert stats.answered == 2 and stats.failed == 3 and stats.stopped is None
    stats = run_annotate(passages, output, CountingTeacher(), progress=False)
    assert stats.answered == 3 and sorted(ids_in(output)) == [f"p{i}" for i in range(5)]


def test_a_dead_teacher_stops_the_run(tmp_path):
    passages = write_passages(tmp_path / "passages.jsonl", 30)
    stats = run_annotate(
        passages,
        tmp_path / "out.jsonl",
        CountingTeacher(limit=0, interrupt=RuntimeError),
        progress=False,
        max_consecutive_failures=3,
    )
    assert stats.stopped and "3 failures in a row" in stats.stopped and stats.failed < 30


def test_budget_caps_requests_per_run(tmp_path):
    passages = write_passages(tmp_path / "passages.jsonl", 5)
    output = tmp_path / "annotations.jsonl"
    teacher = CountingTeacher()
    stats = run_annotate(passages, output, teacher, budget=2, progress=False)
    assert len(teacher.asked) == 2 and stats.skipped_by_budget == 3
    run_annotate(passages, output, teacher, budget=2, progress=False)
    assert len(ids_in(output)) == 4


def test_repeated_passage_ids_are_asked_once(tmp_path):
    passages = tmp_path / "passages.jsonl"
    passages.write_text((json.dumps({"id": "a", "text": "Same text."}) + "\n") * 3)
    teacher = CountingTeacher()
    stats = run_annotate(passages, tmp_path / "out.jsonl", teacher, progress=False)
    assert teacher.asked == ["Same text."] and stats.duplicate_ids == 2


def test_a_second_writer_is_refused(tmp_path):
    output = tmp_path / "annotations.jsonl"
    with AnnotationLog(output):
        with pytest.raises(OutputLocked, match="another annotate process"):
            with AnnotationLog(output):
                pass


def test_gold_teacher_answers_in_the_teachers_tuple_format(tmp_path):
    labelled = tmp_path / "gold.jsonl"
    labelled.write_text(
        json.dumps(
            {
                "text": "Ada Lovelace met Charles Babbage. They built nothing.",
                "entities": [{"text": "Ada Lovelace", "type": "person"}, {"start": 17, "end": 32, "type": "person"}],
            }
        )
        + "\n"
    )
    teacher = build_teacher({"@uniner_teachers": "spacy_universalner.GoldTeacher.v1", "path": str(labelled)})
    assert isinstance(teacher, GoldTeacher)
    assert teacher("Ada Lovelace met Charles Babbage.") == '[("Ada Lovelace", "person"), ("Charles Babbage", "person")]'
    assert teacher("They built nothing.") == "[]"


def test_killed_cli_run_against_a_flaky_server_resumes_to_exactly_once(tmp_path):
    """The issue's acceptance check: SIGKILL mid-run, rerun the same command, every passage once."""
    n = 40
    passages = write_passages(tmp_path / "passages.jsonl", n)
    output = tmp_path / "annotations.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with FakeOpenAIServer(fail_rate=0.25, delay=0.05, late=1.0, seed=1) as server:
        command = [
            sys.executable,
            "-m",
            "spacy_universalner",
            "annotate",
            str(passages),
            str(output),
            "--base-url",
            server.url,
            "--model",
            "fake",
            "--api-key-env",
            "",
            "--concurrency",
            "4",
            "--timeout",
            "0.5",
            "--max-retries",
            "10",
            "--no-progress",
        ]
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while time.time() < deadline and (not output.exists() or len(output.read_text().splitlines()) < 8):
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        on_disk = set(ids_in(output))
        assert 0 < len(on_disk) < n
        requests_before = len(server.requests)
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
    ids = ids_in(output)
    assert len(ids) == n and len(set(ids)) == n
    asked_again = {"p" + e["prompt"].split("Passage: Word")[-1].split()[0] for e in server.requests[requests_before:]}
    assert asked_again and not asked_again & on_disk


def test_passage_ids_are_compared_as_text_so_1_and_quoted_1_are_one_passage(tmp_path):
    # Used to abort with "Passage 1 is already in ...", and a rerun then skipped the second silently.
    passages = tmp_path / "passages.jsonl"
    passages.write_text(
        json.dumps({"id": 1, "text": "One here."}) + "\n" + json.dumps({"id": "1", "text": "Other."}) + "\n"
    )
    output = tmp_path / "out.jsonl"
    teacher = CountingTeacher()
    stats = run_annotate(passages, output, teacher, progress=False)
    assert stats.answered == 1 and stats.duplicate_ids == 1 and teacher.asked == ["One here."]
    assert ids_in(output) == ["1"]
    assert run_annotate(passages, output, CountingTeacher(), progress=False).answered == 0


@pytest.mark.parametrize(
    "line,message",
    [
        ({"id": "p1"}, 'expected a JSON object with an "id" and a "text"'),
        ({"id": ["p", 1], "text": "x"}, "a passage id must be a string or an integer"),
        (["p1", "text"], "expected a JSON object"),
    ],
)
def test_a_bad_passage_line_is_an_error_naming_the_file_and_line(tmp_path, line, message):
    passages = tmp_path / "passages.jsonl"
    passages.write_text(json.dumps({"id": "p0", "text": "Fine."}) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(ValueError, match=f"passages.jsonl:2: {message}"):
        run_annotate(passages, tmp_path / "out.jsonl", CountingTeacher(), progress=False)


def test_an_output_line_with_a_list_id_is_an_error_naming_the_file_and_line(tmp_path):
    output = tmp_path / "out.jsonl"
    output.write_text(
        json.dumps({"id": "p0", "answer": "[]"}) + "\n" + json.dumps({"id": ["p1"], "answer": "[]"}) + "\n"
    )
    with pytest.raises(ValueError, match="out.jsonl:2: a passage id must be a string or an integer"):
        run_annotate(write_passages(tmp_path / "passages.jsonl", 2), output, CountingTeacher(), progress=False)


def test_a_teacher_answer_that_is_not_text_counts_as_a_failure_and_the_run_goes_on(tmp_path):
    class StructuredTeacher(CountingTeacher):
        def __call__(self, passage):
            return {"entities": []} if passage.startswith("Word1 ") else super().__call__(passage)

    output = tmp_path / "out.jsonl"
    stats = run_annotate(write_passages(tmp_path / "passages.jsonl", 4), output, StructuredTeacher(), progress=False)
    assert stats.answered == 3 and stats.failed == 1 and sorted(ids_in(output)) == ["p0", "p2", "p3"]


@pytest.mark.parametrize(
    "options,message",
    [
        (["--timeout", "0"], "timeout must be a number of seconds greater than 0"),
        (["--max-retries", "-1"], "max_retries must be an integer >= 0"),
        (["--max-tokens", "-5"], "max_tokens must be an integer >= 1"),
    ],
)
def test_bad_annotate_options_are_refused_before_any_request(tmp_path, options, message):
    from typer.testing import CliRunner

    from spacy_universalner.cli import app

    passages = write_passages(tmp_path / "passages.jsonl", 2)
    with FakeOpenAIServer() as server:
        result = CliRunner().invoke(
            app,
            [
                "annotate",
                str(passages),
                str(tmp_path / "out.jsonl"),
                "--base-url",
                server.url,
                "--model",
                "m",
                "--api-key-env",
                "",
                "--no-progress",
                *options,
            ],
        )
    assert result.exit_code == 1 and message in result.output  # a message, not a traceback
    assert isinstance(result.exception, SystemExit) and server.requests == []  # nothing was sent
