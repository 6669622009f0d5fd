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


def test_a_local_models_key_fingerprints_its_weights_so_retraining_never_serves_old_answers(tmp_path):
    from spacy_universalner.backends.base import cache_key

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
