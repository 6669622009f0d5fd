"""``extract`` over a corpus: it reads lazily, appends durably, and a rerun (after a kill -9, say) writes
every id once. The pipeline is :func:`~spacy_universalner.testing.keyword_pipeline` (no model: the
plumbing is under test); the CLI tests answer from a response cache, so nothing is loaded."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from spacy_universalner.extract import Input, extract_to_jsonl, read_inputs
from spacy_universalner.testing import keyword_pipeline

WORDS = {"person": ["Ada", "Alan"], "location": ["Paris"]}


def corpus(path, n, with_ids=True):
    records = [{"text": f"Ada wrote to Alan from Paris, letter {i}.", "source": "letters"} for i in range(n)]
    if with_ids:
        records = [{"id": f"r{i}", **record} for i, record in enumerate(records)]
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf8")
    return records


def written(path):
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]


def test_a_record_without_an_id_gets_its_file_and_line_and_keeps_its_fields(tmp_path):
    source = tmp_path / "notes.txt"
    source.write_text("Ada met Alan.\n\nParis.\n", encoding="utf8")
    assert [item.record for item in read_inputs([source])] == [
        {"id": "notes.txt:1", "text": "Ada met Alan."},
        {"id": "notes.txt:3", "text": "Paris."},
    ]


def test_a_rerun_skips_what_is_written_and_drops_a_torn_last_line(tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    records = corpus(source, 20)
    nlp = keyword_pipeline(WORDS)
    extract_to_jsonl(nlp, list(read_inputs([source]))[:8], output, batch_size=4)
    with output.open("ab") as file_:  # a kill in the middle of the next write
        file_.write(b'{"id": "r8", "text": "Ada wr')
    stats = extract_to_jsonl(nlp, read_inputs([source]), output, batch_size=4)
    assert (stats.written, stats.skipped) == (12, 8)
    rows = written(output)
    assert [row["id"] for row in rows] == [record["id"] for record in records]
    assert rows[8] == {
        **records[8],
        "ents": [
            {"text": "Ada", "label": "person", "start": 0, "end": 3},
            {"text": "Alan", "label": "person", "start": 13, "end": 17},
            {"text": "Paris", "label": "location", "start": 23, "end": 28},
        ],
        "unaligned": [],
    }


KILLED_RUN = """
import sys
from spacy_universalner.extract import extract_to_jsonl, read_inputs
from spacy_universalner.testing import keyword_pipeline
nlp = keyword_pipeline({words!r}, delay=0.05)
extract_to_jsonl(nlp, read_inputs([sys.argv[1]]), sys.argv[2], batch_size=4)
"""


def test_a_kill_9_and_a_rerun_give_every_id_once(tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    records = corpus(source, 400)
    run = subprocess.Popen([sys.executable, "-c", KILLED_RUN.format(words=WORDS), str(source), str(output)])
    try:
        deadline = time.monotonic() + 300
        while not (output.exists() and output.read_bytes().count(b"\n") >= 8) and run.poll() is None:
            assert time.monotonic() < deadline, "the run wrote nothing"
            time.sleep(0.05)
        os.kill(run.pid, signal.SIGKILL)
    finally:
        run.kill()
        run.wait(timeout=60)
    before = output.read_bytes().count(b"\n")
    assert 8 <= before < 400  # killed in the middle
    stats = extract_to_jsonl(keyword_pipeline(WORDS), read_inputs([source]), output, batch_size=4)
    ids = Counter(row["id"] for row in written(output))
    assert set(ids) == {record["id"] for record in records}
    assert max(ids.values()) == 1
    assert stats.written == 400 - stats.skipped and stats.skipped >= 8


def test_extract_accepts_a_glob_and_nlp_pipe_n_process_gives_the_same_results(tmp_path):
    """Two worker processes (forked, each with one torch thread) write what one process writes."""
    for name in ("a", "b"):
        corpus(tmp_path / f"{name}.jsonl", 30, with_ids=False)
    from spacy_universalner.extract import expand_inputs

    paths = expand_inputs([tmp_path / "*.jsonl"])
    assert [path.name for path in paths] == ["a.jsonl", "b.jsonl"]
    nlp = keyword_pipeline(WORDS)
    extract_to_jsonl(nlp, read_inputs(paths), tmp_path / "one.jsonl", batch_size=4)
    extract_to_jsonl(nlp, read_inputs(paths), tmp_path / "two.jsonl", batch_size=4, n_process=2)
    assert written(tmp_path / "two.jsonl") == written(tmp_path / "one.jsonl")
    assert written(tmp_path / "one.jsonl")[30]["id"] == "b.jsonl:1"


def test_a_broken_input_line_names_its_place_and_keeps_what_was_written(tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    corpus(source, 8)
    with source.open("a", encoding="utf8") as file_:
        file_.write('{"id": "bad", "txt": "no text field"}\n')
    with pytest.raises(ValueError, match=r"in.jsonl:9: expected a JSON object with a 'text' string field"):
        extract_to_jsonl(keyword_pipeline(WORDS), read_inputs([source]), output, batch_size=4)
    assert len(written(output)) == 8


def test_an_output_not_written_by_extract_is_refused_not_overwritten(tmp_path):
    output = tmp_path / "out.jsonl"
    output.write_text('{"name": "someone else\'s file"}\n', encoding="utf8")
    with pytest.raises(ValueError, match="without 'id'.*give a new output path"):
        extract_to_jsonl(keyword_pipeline(WORDS), [Input("Ada.", {"id": 1, "text": "Ada."})], output)
    assert output.read_text(encoding="utf8") == '{"name": "someone else\'s file"}\n'


# -- the command line ----------------------------------------------------------------------------------
CACHED_MODEL = "no-such-org/no-such-model"  # every prompt is in the cache: nothing is loaded
TEXT = "Bill Gates founded Microsoft."


def _extract(tmp_path, *args):
    from typer.testing import CliRunner

    from spacy_universalner.cache import ResponseCache
    from spacy_universalner.cli import app
    from spacy_universalner.prompt import UniNERTemplate

    cache = tmp_path / "responses.jsonl"
    template = UniNERTemplate()
    ResponseCache(cache).add(
        CACHED_MODEL,
        [
            (template.prompt(TEXT, "person"), '["Bill Gates"]'),
            (template.prompt(TEXT, "organization"), '["Microsoft"]'),
        ],
    )
    result = CliRunner().invoke(app, ["extract", "--model", CACHED_MODEL, "--cache", str(cache), *map(str, args)])
    return result, " ".join(result.output.split())  # wasabi wraps long lines


def test_cli_labels_take_the_mapping_form_of_the_config(tmp_path):
    result, output = _extract(tmp_path, "--labels", "PER=person,ORG=organization", TEXT)
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()]
    assert ["Bill", "Gates", "PER", "0", "10"] in rows and ["Microsoft", "ORG", "19", "28"] in rows


@pytest.mark.parametrize(
    "labels,message",
    [
        (
            "person;organization",
            "separated by commas, not semicolons (got 'person;organization'): write 'person,organization'",
        ),
        ("PER=,ORG=organization", "Cannot read 'PER=' in --labels"),
    ],
)
def test_cli_labels_that_would_be_misread_are_refused_with_a_hint(tmp_path, labels, message):
    result, output = _extract(tmp_path, "--labels", labels, TEXT)
    assert result.exit_code == 1
    assert message in output and "Traceback" not in output


def test_cli_an_empty_input_says_so(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf8")
    result, output = _extract(tmp_path, "--labels", "person", "--input", empty)
    assert result.exit_code == 1
    assert "No text in" in output and "every line is blank" in output


def test_cli_output_resumes_and_says_what_it_skipped(tmp_path):
    source, target = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text(TEXT + "\n", encoding="utf8")
    first, _ = _extract(tmp_path, "--labels", "person", "--input", source, "--output", target)
    second, output = _extract(tmp_path, "--labels", "person", "--input", source, "--output", target)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "Wrote 0 result(s)" in output and "skipped 1 already there" in output
    assert written(target) == [
        {
            "id": "in.txt:1",
            "text": TEXT,
            "ents": [{"text": "Bill Gates", "label": "person", "start": 0, "end": 10}],
            "unaligned": [],
        }
    ]
