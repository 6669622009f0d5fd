"""The JSONL response cache survives crashes and can be read and shared by people."""

import json
import warnings
from pathlib import Path

import pytest

import spacy_universalner.cache as cache_module
from spacy_universalner.cache import ResponseCache


def test_entries_are_appended_as_readable_json_lines(tmp_path):
    path = tmp_path / "cache.jsonl"
    ResponseCache(path).add("m", [("prompt 1", '["a"]'), ("prompt 2", "[]")])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"model": "m", "prompt": "prompt 1", "response": '["a"]'},
        {"model": "m", "prompt": "prompt 2", "response": "[]"},
    ]
    fresh = ResponseCache(path)
    assert fresh.get("m", "prompt 1") == '["a"]'
    assert fresh.get("other model", "prompt 1") is None


def test_a_truncated_last_line_is_ignored_and_dropped_before_new_entries(tmp_path):
    path = tmp_path / "cache.jsonl"
    ResponseCache(path).add("m", [("p1", '["a"]')])
    with path.open("a") as f:
        f.write('{"model": "m", "prompt": "p2", "resp')  # a crash mid-write
    cache = ResponseCache(path)
    with pytest.warns(UserWarning, match="Skipped 1 unreadable line"):
        assert cache.get("m", "p1") == '["a"]' and cache.get("m", "p2") is None
    cache.add("m", [("p3", "[]")])  # the torn tail is dropped before appending: the file is whole JSONL again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ResponseCache(path).get("m", "p3") == "[]"
    assert [json.loads(line)["prompt"] for line in path.read_text().splitlines()] == ["p1", "p3"]


def test_repeated_entries_are_not_written_twice(tmp_path):
    path = tmp_path / "cache.jsonl"
    cache = ResponseCache(path)
    cache.add("m", [("p", "[]")])
    cache.add("m", [("p", "[]")])
    assert len(path.read_text().splitlines()) == 1


def test_a_local_models_key_fingerprints_its_weights_so_retraining_never_serves_old_answers(tmp_path):
    from spacy_universalner.pretrained import cache_key

    assert cache_key("Universal-NER/UniNER-7B-type") == "Universal-NER/UniNER-7B-type"  # hub ids: plain name
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 16384)  # 4 MiB: head and tail are sampled
    first = cache_key(str(folder))
    assert first.startswith(f"{folder}@") and first == cache_key(str(folder))
    (folder / "config.json").write_text('{"note": "configs are not weights"}')
    assert cache_key(str(folder)) == first
    weights = bytearray((folder / "model.safetensors").read_bytes())
    weights[-1] ^= 1  # a retrained model: other bytes at the end of the file
    (folder / "model.safetensors").write_bytes(bytes(weights))
    assert cache_key(str(folder)) != first


def _line(model, prompt, response) -> bytes:
    return (json.dumps({"model": model, "prompt": prompt, "response": response}, ensure_ascii=False) + "\n").encode()


def test_bytes_that_are_not_utf8_are_skipped_and_counted_once(tmp_path):
    # A kill that cut "Köln" after the first byte of "ö": the torn copy is skipped, the whole line is used.
    path = tmp_path / "cache.jsonl"
    line = _line("m", "Where is Köln?", '["Köln"]')
    cut = line.index("ö".encode()) + 1
    path.write_bytes(line + line[:cut])
    cache = ResponseCache(path)
    with pytest.warns(UserWarning, match="Skipped 1 unreadable line"):
        assert cache.get("m", "Where is Köln?") == '["Köln"]'
    assert cache.skipped_lines == 1 and len(cache) == 1


@pytest.mark.parametrize(
    "entry",
    [
        {"model": ["m"], "prompt": "p", "response": "[]"},  # list: unhashable as a key
        {"model": "m", "prompt": {"text": "p"}, "response": "[]"},
        {"model": "m", "prompt": "p", "response": ["a"]},
        {"model": "m", "prompt": "p"},
        ["m", "p", "[]"],
    ],
)
def test_lines_with_fields_of_the_wrong_type_are_skipped(tmp_path, entry):
    path = tmp_path / "cache.jsonl"
    path.write_bytes(_line("m", "good", '["a"]') + (json.dumps(entry) + "\n").encode())
    cache = ResponseCache(path)
    with pytest.warns(UserWarning, match="Skipped 1"):
        assert cache.get("m", "good") == '["a"]'
    assert len(cache) == 1


def test_a_read_that_fails_is_retried_instead_of_leaving_a_half_loaded_cache(tmp_path, monkeypatch):
    path = tmp_path / "cache.jsonl"
    ResponseCache(path).add("m", [("p", '["a"]')])
    cache = ResponseCache(path)
    real_read = cache_module._read
    failures = iter([OSError("disk went away")])

    def flaky_read(path):
        for err in failures:
            raise err
        return real_read(path)

    monkeypatch.setattr(cache_module, "_read", flaky_read)
    with pytest.raises(OSError):
        cache.get("m", "p")
    assert cache.get("m", "p") == '["a"]'  # read again, whole


def test_a_prompt_with_a_lone_surrogate_is_stored_and_read_back(tmp_path):
    # Valid in a Python str (and so in a Doc), not in UTF-8: written as a JSON escape.
    path = tmp_path / "cache.jsonl"
    ResponseCache(path).add("m", [("broken \ud800 text", '["x"]')])
    assert ResponseCache(path).get("m", "broken \ud800 text") == '["x"]'


def test_an_unwritable_cache_is_reported_before_the_model_is_asked(tmp_path):
    from spacy_universalner.cache import CacheNotWritable

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cache = ResponseCache(blocker / "cache.jsonl")
    assert cache.get("m", "p") is None  # reading a cache that does not exist is fine
    with pytest.raises(CacheNotWritable, match="cannot be written.*cache = null"):
        cache.check_writable()


def test_an_append_waits_for_another_writers_line_in_flight_instead_of_cutting_it(tmp_path):
    # Two processes appending to one cache lost entries: the torn-tail repair cut the other's write in flight.
    fcntl = pytest.importorskip("fcntl")
    import threading
    import time

    from spacy_universalner.jsonl import encode_line

    path = tmp_path / "cache.jsonl"
    line = encode_line({"model": "m", "prompt": "theirs", "response": "x" * 200_000})
    other = path.open("ab")  # another process, half-way through writing its line
    fcntl.flock(other.fileno(), fcntl.LOCK_EX)
    other.write(line[:100_000])
    other.flush()
    mine = threading.Thread(target=lambda: ResponseCache(path).add("m", [("mine", "[]")]))
    mine.start()
    time.sleep(0.3)
    assert mine.is_alive()  # waiting for the lock, not repairing the "torn" line
    other.write(line[100_000:] + b"\n")
    other.close()  # releases the lock
    mine.join(10)
    cache = ResponseCache(path)
    assert cache.get("m", "theirs") == "x" * 200_000 and cache.get("m", "mine") == "[]"


def test_a_cache_path_that_is_no_regular_file_is_refused_clearly(tmp_path):
    # A folder gave a raw IsADirectoryError; /dev/zero was read until the memory ran out (23 GB).
    import os

    import spacy

    paths = [tmp_path] + ([Path("/dev/zero")] if os.path.exists("/dev/zero") else [])
    for path in paths:
        with pytest.raises(ValueError, match=r"is (a folder|not a regular file): give the path of a JSONL file"):
            ResponseCache(path)
        with pytest.raises(ValueError, match="give the path of a JSONL file"):
            spacy.blank("en").add_pipe("universal_ner", config={"labels": ["person"], "cache": str(path)})
    assert len(ResponseCache(tmp_path / "new" / "cache.jsonl")) == 0  # a new path is fine
