"""The Ray Data engine on one small machine: the same results as one process, each GPU actor on its own
device, and a driver killed with -9 then rerun gives every id once. Skipped without the ``[ray]`` extra.

Sized for 2 cores: Ray is told of 4 CPUs and each actor takes 0.5 (else the read task starves), its
memory monitor is off, every test has a deadline, and Ray is shut down when the module ends (the killed
driver joins this module's Ray, as a driver on a cluster would, so nothing of it outlives the module).
"""

import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

ray = pytest.importorskip("ray", reason="the Ray engine is an optional extra: pip install 'spacy-universalner[ray]'")

from spacy_universalner.distributed import extract_with_ray  # noqa: E402
from spacy_universalner.extract import extract_to_jsonl, read_inputs  # noqa: E402
from spacy_universalner.testing import keyword_pipeline  # noqa: E402

WORDS = {"person": ["Ada", "Alan"], "location": ["Paris", "Rome"]}
RAY_ENV = {"RAY_memory_monitor_refresh_ms": "0"}
ON_TWO_CORES = {"num_cpus": 4, "num_gpus": 2, "include_dashboard": False}


@pytest.fixture(scope="module")
def local_ray():
    """One Ray for the module: 4 logical CPUs and 2 fake GPUs (no CUDA is touched: the pipelines here run no model)."""
    os.environ.update(RAY_ENV)
    for attempt in range(3):  # Ray gives its raylet 30 s to start, which a loaded machine can exceed
        try:
            ray.init(**ON_TWO_CORES)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    yield ray
    ray.shutdown()


@pytest.fixture
def deadline():
    """Each test fails after 600 s instead of hanging the suite (minutes only on a loaded machine)."""

    def expired(signum, frame):
        raise TimeoutError("the Ray test ran past its 600 s deadline")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(600)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def write_corpus(path, n):
    texts = [f"{'Ada' if i % 3 else 'Alan'} wrote from {'Paris' if i % 2 else 'Rome'}, letter {i}." for i in range(n)]
    path.write_text(
        "".join(json.dumps({"id": i, "text": text}) + "\n" for i, text in enumerate(texts)), encoding="utf8"
    )


def shard_rows(folder):
    return [
        json.loads(line)
        for shard in sorted(folder.glob("part-*.jsonl"))
        for line in shard.read_text("utf8").splitlines()
    ]


def test_ray_writes_what_one_process_writes_on_1000_texts(tmp_path, local_ray, deadline):
    source = tmp_path / "corpus.jsonl"
    write_corpus(source, 1000)
    extract_to_jsonl(keyword_pipeline(WORDS), read_inputs([source]), tmp_path / "one.jsonl", batch_size=50)
    one = {row["id"]: row for row in map(json.loads, (tmp_path / "one.jsonl").read_text("utf8").splitlines())}
    stats = extract_with_ray(
        functools.partial(keyword_pipeline, WORDS),
        [source],
        tmp_path / "ray",
        actors=2,
        cpus_per_actor=0.5,
        batch_size=50,
    )
    rows = shard_rows(tmp_path / "ray")
    assert stats.written == len(rows) == 1000
    assert {row["id"]: row for row in rows} == one
    assert all(gpus == "" for gpus in stats.shards.values())  # CPU actors


def test_each_gpu_actor_gets_its_own_device(tmp_path, local_ray, deadline):
    source = tmp_path / "corpus.jsonl"
    write_corpus(source, 200)
    stats = extract_with_ray(
        functools.partial(keyword_pipeline, WORDS, delay=0.2),
        [source],
        tmp_path / "ray",
        actors=2,
        gpus_per_actor=1,
        cpus_per_actor=0.5,
        batch_size=10,
    )
    assert stats.written == 200
    assert sorted(stats.shards.values()) == ["0", "1"]  # two actors, one GPU id each, not the same


KILLED_DRIVER = """
import functools, os, sys
os.environ.update({env!r})
import ray
from spacy_universalner.distributed import extract_with_ray
from spacy_universalner.testing import keyword_pipeline
extract_with_ray(functools.partial(keyword_pipeline, {words!r}, delay=0.1), [sys.argv[1]], sys.argv[2],
                 actors=2, cpus_per_actor=0.5, batch_size=5, address=sys.argv[3])
"""


def test_a_driver_killed_with_9_and_rerun_gives_no_duplicate_and_no_missing_id(tmp_path, local_ray, deadline):
    source, output = tmp_path / "corpus.jsonl", tmp_path / "ray"
    write_corpus(source, 400)
    script = KILLED_DRIVER.format(env=RAY_ENV, words=WORDS)
    # A driver that joins this module's Ray, as on a cluster: its death leaves the cluster up (and its actors
    # are ended by Ray); its own session, so the kill reaches it and nothing else.
    address = local_ray.get_runtime_context().gcs_address
    driver = subprocess.Popen(
        [sys.executable, "-c", script, str(source), str(output), address],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while sum(shard.read_bytes().count(b"\n") for shard in output.glob("part-*.jsonl")) < 20:
            assert driver.poll() is None, "the driver ended before it was killed"
            time.sleep(0.1)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=60)
    assert sum(shard.read_bytes().count(b"\n") for shard in output.glob("part-*.jsonl")) < 400  # killed in the middle
    stats = extract_with_ray(
        functools.partial(keyword_pipeline, WORDS), [source], output, actors=2, cpus_per_actor=0.5, batch_size=50
    )
    ids = Counter(row["id"] for row in shard_rows(output))
    assert set(ids) == set(range(400))
    assert max(ids.values()) == 1
    assert stats.skipped >= 20 and stats.written == 400 - stats.skipped


def test_the_cli_runs_on_ray_into_a_folder_of_shards(tmp_path, local_ray, deadline):
    """`extract --engine ray`: each actor builds the pipeline from the command's settings (here answered from a
    response cache, so no model loads)."""
    from typer.testing import CliRunner

    from spacy_universalner.cache import ResponseCache
    from spacy_universalner.cli import app
    from spacy_universalner.prompt import UniNERTemplate

    texts = ["Bill Gates founded Microsoft.", "Ada Lovelace lived in London."]
    cache, source = tmp_path / "responses.jsonl", tmp_path / "in.txt"
    ResponseCache(cache).add(
        "no-such-org/no-such-model",
        [
            (UniNERTemplate().prompt(texts[0], "person"), '["Bill Gates"]'),
            (UniNERTemplate().prompt(texts[1], "person"), '["Ada Lovelace"]'),
        ],
    )
    source.write_text("\n".join(texts) + "\n", encoding="utf8")
    result = CliRunner().invoke(
        app,
        [
            "extract",
            "--engine",
            "ray",
            "--model",
            "no-such-org/no-such-model",
            "--cache",
            str(cache),
            "--labels",
            "PER=person",
            "--input",
            str(source),
            "--output",
            str(tmp_path / "out"),
            "--actors",
            "2",
            "--cpus-per-actor",
            "0.5",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Wrote 2 result(s)" in result.output
    assert sorted(
        (row["id"], [e["text"] for e in row["ents"]], [e["label"] for e in row["ents"]])
        for row in shard_rows(tmp_path / "out")
    ) == [
        ("in.txt:1", ["Bill Gates"], ["PER"]),
        ("in.txt:2", ["Ada Lovelace"], ["PER"]),
    ]
