"""The JSONL response cache survives crashes and can be read and shared by people."""
import json

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


def test_a_truncated_last_line_is_ignored_and_not_glued_to_new_entries(tmp_path):
    path = tmp_path / "cache.jsonl"
    ResponseCache(path).add("m", [("p1", '["a"]')])
    with path.open("a") as f:
        f.write('{"model": "m", "prompt": "p2", "resp')  # a crash mid-write
    cache = ResponseCache(path)
    assert cache.get("m", "p1") == '["a"]' and cache.get("m", "p2") is None
    cache.add("m", [("p3", "[]")])
    assert ResponseCache(path).get("m", "p3") == "[]"


def test_repeated_entries_are_not_written_twice(tmp_path):
    path = tmp_path / "cache.jsonl"
    cache = ResponseCache(path)
    cache.add("m", [("p", "[]")])
    cache.add("m", [("p", "[]")])
    assert len(path.read_text().splitlines()) == 1
