"""Checks against the real benchmark files; skipped where /work/shared/data is absent."""

import json
import os
from pathlib import Path

import pytest
import spacy

from spacy_universalner.eval import uniner_f1
from spacy_universalner.eval.benchmarks import load_benchmarks
from spacy_universalner.eval.readers import ANSWERS_KEY, GOLD_KEY

DATA = Path(os.environ.get("UNINER_DATA_DIR") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
pytestmark = pytest.mark.skipif(not (DATA / "universalner_eval").is_dir(), reason="benchmark data not available")


def test_official_crossner_ai_file_reads_every_query_and_gold_scores_itself_perfectly():
    records = json.loads((DATA / "universalner_eval" / "CrossNER_AI.json").read_text(encoding="utf8"))
    golds = [r["conversations"][-1]["value"] for r in records]
    bench = load_benchmarks(names=["crossner_ai"], data_dir=DATA)["crossner_ai"]
    docs = bench.load(spacy.blank("en"))
    assert len(docs) == 431
    assert sum(len(d.user_data[ANSWERS_KEY]) for d in docs) == len(records) == 5603
    assert uniner_f1(golds, golds)["f1"] == pytest.approx(1.0)


def test_bio_definitions_match_the_documented_counts():
    benches = load_benchmarks(names=["crossner_ai_bio", "mit_movie"], data_dir=DATA)
    nlp = spacy.blank("en")
    ai = benches["crossner_ai_bio"].load(nlp)
    assert (len(ai), sum(len(d.spans[GOLD_KEY]) for d in ai)) == (431, 1809 - 181)  # misc dropped
    movie = benches["mit_movie"].load(nlp)
    assert (len(movie), sum(len(d.spans[GOLD_KEY]) for d in movie)) == (2443, 5339)
    assert "average ratings" in benches["mit_movie"].queries
