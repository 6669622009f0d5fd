"""``nlp.pipe(docs, n_process=N)`` with ``universal_ner``: it completes on a CPU backend with the entities
of one process, also once the parent has run the model (a forked worker used to block forever in torch's
first layer norm), and it refuses a GPU backend, or a model that cannot travel to spawned workers, in one
clear line."""

import json
import pickle
import subprocess
import sys

import pytest
import spacy

from spacy_universalner.registry import uniner_backends
from spacy_universalner.testing import KeywordBackend

TEXTS = ["Bill Gates founded Microsoft in Albuquerque.", "Angela Merkel visited Paris in May."] * 4

AFTER_THE_PARENT_RAN = """
import json, spacy
nlp = spacy.blank("en")
nlp.add_pipe("universal_ner", config={{"labels": "person,organization,location"}})
texts = {texts!r}
one = [[(e.text, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]
two = [[(e.text, e.label_) for e in doc.ents] for doc in nlp.pipe(texts, n_process=2, batch_size=2)]
print(json.dumps({{"one": one, "two": two}}))
"""


def test_n_process_after_the_parent_ran_the_span_model_gives_the_same_entities():
    # A subprocess, so that a hang fails the test at the timeout instead of blocking the suite.
    done = subprocess.run(
        [sys.executable, "-c", AFTER_THE_PARENT_RAN.format(texts=TEXTS)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["two"] == found["one"]
    assert ["Bill Gates", "person"] in found["one"][0]


class GpuKeywords(KeywordBackend):
    device = "cuda"  # what the component reads to know where a local backend computes


@uniner_backends("test_n_process.GpuKeywords.v1")
def make_gpu_keywords() -> GpuKeywords:
    return GpuKeywords({"person": ["Bill Gates"]})


def test_n_process_refuses_a_gpu_backend_and_says_what_to_do_instead():
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner", config={"labels": ["person"], "model": {"@uniner_backends": "test_n_process.GpuKeywords.v1"}}
    )
    assert [e.text for e in nlp(TEXTS[0]).ents] == ["Bill Gates"]  # one process: fine
    with pytest.raises(ValueError) as error:  # spaCy's E871 carries the worker's message
        list(nlp.pipe(TEXTS, n_process=2))
    last = str(error.value).strip().splitlines()[-1]
    assert "a GPU backend ('keywords' on cuda) does not belong there" in last
    assert "Use n_process=1 and raise batch_size, or the Ray engine" in last


def test_a_loaded_span_model_that_cannot_be_pickled_for_spawned_workers_says_so():
    nlp = spacy.blank("en")
    component = nlp.add_pipe("universal_ner", config={"labels": ["person"]})
    unloaded = pickle.loads(pickle.dumps(component))  # before the model is used: it travels as settings
    assert unloaded.labels == ("person",) and unloaded.model.name == "uniner-span"
    nlp(TEXTS[0])
    with pytest.raises(
        TypeError, match=r"'uniner-span' cannot be pickled .* spawn/forkserver start methods: start the workers before"
    ):
        pickle.dumps(component)
