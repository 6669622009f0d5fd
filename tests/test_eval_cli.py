"""`evaluate` end to end on tiny fixtures: a cached universal_ner pipeline and a plain spaCy one."""
import json

import pytest
import spacy
from typer.testing import CliRunner

from spacy_universalner.cli import app
from spacy_universalner.prompt import UniNERTemplate

MODEL = "no-such-org/no-such-model"
PASSAGES = [
    ("Hinton works at Google .", {"person": ["Hinton"], "organization": ["Google"]}),
    ("LeCun left Bell Labs for NYU .", {"person": ["LeCun"], "organization": ["Bell Labs", "NYU"]}),
    ("Nothing here .", {"person": [], "organization": []}),
]


def _conversation(text, query, mentions):
    return {"id": "x", "conversations": [
        {"from": "human", "value": f"Text: {text}"}, {"from": "gpt", "value": "I've read this text."},
        {"from": "human", "value": f"What describes {query} in the text?"}, {"from": "gpt", "value": json.dumps(mentions)}]}


@pytest.fixture
def bench(tmp_path):
    """A conversation-format test file, a BIO copy of it, and benchmark definitions for both."""
    data = tmp_path / "data"
    data.mkdir()
    records = [_conversation(text, q, m) for text, gold in PASSAGES for q, m in gold.items()]
    (data / "tiny.json").write_text(json.dumps(records), encoding="utf8")
    bio = "Hinton\tB-PER\nworks\tO\nat\tO\nGoogle\tB-ORG\n.\tO\n\nLeCun\tB-PER\nleft\tO\nBell\tB-ORG\nLabs\tI-ORG\nfor\tO\nNYU\tB-ORG\n.\tO\n\nNothing\tO\nhere\tO\n.\tO\n"
    (data / "tiny.txt").write_text(bio, encoding="utf8")
    cfg = tmp_path / "benchmarks.cfg"
    cfg.write_text(
        '[paths]\ndata = "nowhere"\n\n[benchmarks]\n\n'
        '[benchmarks.tiny]\ntitle = "Tiny"\n\n[benchmarks.tiny.reader]\n'
        '@uniner_readers = "spacy_universalner.uniner_conversations.v1"\npath = "${paths.data}/tiny.json"\n\n'
        '[benchmarks.tiny.paper]\nUniNER-7B = 53.5\n\n'
        '[benchmarks.tiny_bio]\ntitle = "Tiny BIO"\n\n[benchmarks.tiny_bio.reader]\n'
        '@uniner_readers = "spacy_universalner.conll.v1"\npath = "${paths.data}/tiny.txt"\n\n'
        '[benchmarks.tiny_bio.types]\nPER = "person"\nORG = "organization"\nMISC = null\n',
        encoding="utf8",
    )
    return tmp_path, cfg, data


def _cached_pipeline(tmp_path, answers):
    """A universal_ner config whose every prompt is in the response cache: the model never loads."""
    template = UniNERTemplate()
    cache = tmp_path / "responses.jsonl"
    with cache.open("w", encoding="utf8") as file_:
        for (text, gold), answer in zip(PASSAGES, answers):
            for query in gold:
                line = {"model": MODEL, "prompt": template.prompt(text, query), "response": answer(query, gold[query])}
                file_.write(json.dumps(line) + "\n")
    nlp = spacy.blank("en")
    nlp.add_pipe("universal_ner", config={
        "labels": ["person", "organization"], "cache": str(cache),
        "model": {"@uniner_backends": "spacy_universalner.HuggingFace.v1", "name": MODEL}})
    config_path = tmp_path / "uniner.cfg"
    nlp.config.to_disk(config_path)
    return config_path


def _run(*args):
    result = CliRunner().invoke(app, ["evaluate", *map(str, args)])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_cached_gold_answers_score_100_and_write_json_table_and_plot(bench):
    tmp_path, cfg, data = bench
    config_path = _cached_pipeline(tmp_path, [lambda q, m: json.dumps(m)] * len(PASSAGES))
    out = tmp_path / "out"
    _run(config_path, "--datasets", "tiny,tiny_bio", "--benchmarks", cfg, "--data-dir", data, "--output", out, "--name", "cached")
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("tiny", "tiny_bio"):
        result = metrics["datasets"][name]
        assert result["uniner"]["f1"] == pytest.approx(1.0)
        assert result["spans"]["f1"] == pytest.approx(1.0)
        assert result["n_queries"] == 6
        assert result["prediction_sources"] == {"response": 6, "spans": 0}
    table = (out / "table.md").read_text()
    assert table.splitlines()[0] == "| model | Tiny | Tiny BIO | avg |"
    assert "| cached | 100.0 | 100.0 | 100.0 |" in table
    assert "| UniNER-7B (paper) | 53.5 | – | – |" in table
    assert (out / "f1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hallucinated_mentions_count_as_false_positives_as_in_the_paper(bench):
    tmp_path, cfg, data = bench
    # Each answer adds a name that is not in the text: the component cannot align it, the metric still counts it.
    config_path = _cached_pipeline(tmp_path, [lambda q, m: json.dumps(m + ["Turing"]) if m else "[]"] * len(PASSAGES))
    out = tmp_path / "out"
    _run(config_path, "-d", "tiny", "--benchmarks", cfg, "--data-dir", data, "-o", out)
    result = json.loads((out / "metrics.json").read_text())["datasets"]["tiny"]
    assert (result["uniner"]["n_correct"], result["uniner"]["n_pred"], result["uniner"]["n_gold"]) == (5, 9, 5)
    assert result["spans"]["precision"] == pytest.approx(1.0)  # the spans on the Doc are all correct


def test_plain_spacy_pipeline_through_a_label_map_with_a_seeded_limit(bench):
    tmp_path, cfg, data = bench
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PERSON", "pattern": "Hinton"}, {"label": "ORG", "pattern": "Google"},
                        {"label": "ORG", "pattern": "Bell"}])
    nlp.to_disk(tmp_path / "ruler")
    out = tmp_path / "out"
    _run(tmp_path / "ruler", "-d", "tiny_bio", "--benchmarks", cfg, "--data-dir", data, "-o", out,
         "--label-map", "PERSON=person,ORG=organization")
    result = json.loads((out / "metrics.json").read_text())["datasets"]["tiny_bio"]
    u = result["uniner"]
    assert (u["n_correct"], u["n_pred"], u["n_gold"]) == (2, 3, 5)
    assert result["prediction_sources"] == {"response": 0, "spans": 6}
    assert result["partial"]["n_correct"] == 2.5  # "Bell" shares a word with "Bell Labs"
    assert result["spans"]["per_type"]["person"]["f"] == pytest.approx(2 * 0.5 / 1.5)
    _run(tmp_path / "ruler", "-d", "tiny_bio", "--benchmarks", cfg, "--data-dir", data, "-o", out, "--limit", "1", "--seed", "3")
    assert json.loads((out / "metrics.json").read_text())["datasets"]["tiny_bio"]["n_docs"] == 1


def test_unknown_dataset_fails_with_the_known_names(bench):
    tmp_path, cfg, data = bench
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path), "-d", "nope", "--benchmarks", str(cfg)])
    assert result.exit_code == 1
    assert "tiny_bio" in result.output


def test_a_pipeline_whose_labels_match_no_benchmark_type_gets_a_hint(bench):
    tmp_path, cfg, data = bench
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "PERSON", "pattern": "Hinton"}])
    nlp.to_disk(tmp_path / "ruler")
    result = _run(tmp_path / "ruler", "-d", "tiny_bio", "--benchmarks", cfg, "--data-dir", data, "-o", tmp_path / "out")
    assert "--label-map" in result.output


def test_missing_benchmark_files_name_the_data_dir_setting(bench, tmp_path):
    _, cfg, _ = bench
    nlp = spacy.blank("en")
    nlp.to_disk(tmp_path / "blank")
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "blank"), "-d", "tiny", "--benchmarks", str(cfg),
                                      "--data-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "UNINER_DATA_DIR" in result.output and "Traceback" not in result.output
