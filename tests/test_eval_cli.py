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
    return {
        "id": "x",
        "conversations": [
            {"from": "human", "value": f"Text: {text}"},
            {"from": "gpt", "value": "I've read this text."},
            {"from": "human", "value": f"What describes {query} in the text?"},
            {"from": "gpt", "value": json.dumps(mentions)},
        ],
    }


@pytest.fixture
def bench(tmp_path):
    """A conversation-format test file, a BIO copy of it, and benchmark definitions for both."""
    data = tmp_path / "data"
    data.mkdir()
    records = [_conversation(text, q, m) for text, gold in PASSAGES for q, m in gold.items()]
    (data / "tiny.json").write_text(json.dumps(records), encoding="utf8")
    bio = (
        "Hinton\tB-PER\nworks\tO\nat\tO\nGoogle\tB-ORG\n.\tO\n\n"
        "LeCun\tB-PER\nleft\tO\nBell\tB-ORG\nLabs\tI-ORG\nfor\tO\nNYU\tB-ORG\n.\tO\n\n"
        "Nothing\tO\nhere\tO\n.\tO\n"
    )
    (data / "tiny.txt").write_text(bio, encoding="utf8")
    cfg = tmp_path / "benchmarks.cfg"
    cfg.write_text(
        '[paths]\ndata = "nowhere"\n\n[benchmarks]\n\n'
        '[benchmarks.tiny]\ntitle = "Tiny"\n\n[benchmarks.tiny.reader]\n'
        '@uniner_readers = "spacy_universalner.uniner_conversations.v1"\npath = "${paths.data}/tiny.json"\n\n'
        "[benchmarks.tiny.paper]\nUniNER-7B = 53.5\n\n"
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
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["person", "organization"],
            "cache": str(cache),
            "model": {"@uniner_backends": "spacy_universalner.HuggingFace.v1", "name": MODEL},
        },
    )
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
    _run(
        config_path,
        "--datasets",
        "tiny,tiny_bio",
        "--benchmarks",
        cfg,
        "--data-dir",
        data,
        "--output",
        out,
        "--name",
        "cached",
    )
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
    ruler.add_patterns(
        [
            {"label": "PERSON", "pattern": "Hinton"},
            {"label": "ORG", "pattern": "Google"},
            {"label": "ORG", "pattern": "Bell"},
        ]
    )
    nlp.to_disk(tmp_path / "ruler")
    out = tmp_path / "out"
    _run(
        tmp_path / "ruler",
        "-d",
        "tiny_bio",
        "--benchmarks",
        cfg,
        "--data-dir",
        data,
        "-o",
        out,
        "--label-map",
        "PERSON=person,ORG=organization",
    )
    result = json.loads((out / "metrics.json").read_text())["datasets"]["tiny_bio"]
    u = result["uniner"]
    assert (u["n_correct"], u["n_pred"], u["n_gold"]) == (2, 3, 5)
    assert result["prediction_sources"] == {"response": 0, "spans": 6}
    assert result["partial"]["n_correct"] == 2.5  # "Bell" shares a word with "Bell Labs"
    assert result["spans"]["per_type"]["person"]["f"] == pytest.approx(2 * 0.5 / 1.5)
    _run(
        tmp_path / "ruler",
        "-d",
        "tiny_bio",
        "--benchmarks",
        cfg,
        "--data-dir",
        data,
        "-o",
        out,
        "--limit",
        "1",
        "--seed",
        "3",
    )
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
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(tmp_path / "blank"),
            "-d",
            "tiny",
            "--benchmarks",
            str(cfg),
            "--data-dir",
            str(tmp_path / "nowhere"),
        ],
    )
    assert result.exit_code == 1
    assert "UNINER_DATA_DIR" in result.output and "Traceback" not in result.output


def test_a_row_is_named_after_the_model_unless_named_on_the_command_line(bench):
    tmp_path, cfg, data = bench
    config_path = _cached_pipeline(tmp_path, [lambda q, m: json.dumps(m)] * len(PASSAGES))
    out = tmp_path / "out"
    _run(config_path, "-d", "tiny", "--benchmarks", cfg, "--data-dir", data, "-o", out)
    assert f"| {MODEL} | 100.0 | 100.0 |" in (out / "table.md").read_text()  # not "uniner", the config's file name
    assert json.loads((out / "metrics.json").read_text())["model"] == MODEL
    _run(config_path, "-d", "tiny", "--benchmarks", cfg, "--data-dir", data, "-o", out, "--name", "mine")
    assert "| mine | 100.0 | 100.0 |" in (out / "table.md").read_text()


def test_a_plain_pipeline_row_is_named_after_its_package_else_its_folder(bench):
    tmp_path, cfg, data = bench
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "person", "pattern": "Hinton"}])
    nlp.to_disk(tmp_path / "ruler")
    nlp.meta["name"] = "hinton_finder"
    nlp.to_disk(tmp_path / "packaged")
    for folder, row in (("ruler", "ruler"), ("packaged", "en_hinton_finder")):
        _run(tmp_path / folder, "-d", "tiny_bio", "--benchmarks", cfg, "--data-dir", data, "-o", tmp_path / "out")
        assert (tmp_path / "out" / "table.md").read_text().splitlines()[2].startswith(f"| {row} |")


def test_the_response_cache_of_a_config_with_paths_output_sits_in_the_output_folder(bench, monkeypatch):
    """configs/benchmarks_pipeline.cfg's layout: the answers behind a results folder are kept in it."""
    tmp_path, cfg, data = bench
    config_path = _cached_pipeline(tmp_path, [lambda q, m: json.dumps(m)] * len(PASSAGES))
    config = spacy.util.load_config(config_path, interpolate=False)
    config["paths"] = {"output": "metrics", "cache": "${paths.output}/responses.jsonl"}
    config["components"]["universal_ner"]["cache"] = "${paths.cache}"
    config.to_disk(tmp_path / "with_output.cfg", interpolate=False)
    out = tmp_path / "elsewhere"
    out.mkdir()
    (tmp_path / "responses.jsonl").rename(out / "responses.jsonl")  # every answer, only under --output
    monkeypatch.chdir(tmp_path)
    # Read from anywhere else, the cache would miss and the model (which does not exist) would be loaded.
    _run(tmp_path / "with_output.cfg", "-d", "tiny", "--benchmarks", cfg, "--data-dir", data, "-o", out)
    assert json.loads((out / "metrics.json").read_text())["datasets"]["tiny"]["uniner"]["f1"] == pytest.approx(1.0)
    assert not (tmp_path / "metrics").exists()


def test_the_shipped_benchmark_config_keeps_its_cache_under_paths_output():
    from pathlib import Path

    config = spacy.util.load_config(
        Path(__file__).parents[1] / "configs" / "benchmarks_pipeline.cfg",
        overrides={"paths.output": "runs/x"},
        interpolate=True,
    )
    assert config["components"]["universal_ner"]["cache"] == "runs/x/responses.jsonl"


@pytest.mark.parametrize(
    "env,flags,found",
    [
        ("data", ["--data-dir-default", "nowhere"], True),  # the variable beats the project's default
        (None, ["--data-dir-default", "data"], True),
        (None, ["--data-dir-default", "nowhere"], False),
        ("nowhere", ["--data-dir", "data", "--data-dir-default", "nowhere"], True),  # an explicit folder beats both
    ],
)
def test_uniner_data_dir_is_honoured_where_the_project_passes_only_its_default(bench, monkeypatch, env, flags, found):
    tmp_path, cfg, data = bench
    nlp = spacy.blank("en")
    nlp.to_disk(tmp_path / "blank")
    if env:
        monkeypatch.setenv("UNINER_DATA_DIR", str(tmp_path / env))
    else:
        monkeypatch.delenv("UNINER_DATA_DIR", raising=False)
    flags = [str(tmp_path / f) if f in ("data", "nowhere") else f for f in flags]
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(tmp_path / "blank"),
            "-d",
            "tiny",
            "--benchmarks",
            str(cfg),
            "-o",
            str(tmp_path / "out"),
            *flags,
        ],
    )
    assert result.exit_code == (0 if found else 1), result.output


class _EmptyAnswers:
    """A backend answering [] to everything, counting its calls."""

    name = "empty-answers"

    def __init__(self):
        self.calls = []

    def __call__(self, queries, max_new_tokens=256):
        from spacy_universalner.types import Generation

        self.calls.append(len(queries))
        return [Generation("[]") for _ in queries]


def test_the_component_reports_answered_queries_after_each_model_call_and_cache_lookup(tmp_path):
    """What moves evaluate's progress bar: every `batch_size` Docs, not once per nlp.pipe batch."""
    from spacy_universalner.component import UniversalNER

    texts = [text for text, _ in PASSAGES]
    nlp = spacy.blank("en")
    pipe = UniversalNER(
        nlp.vocab,
        labels=["person", "organization"],
        model=_EmptyAnswers(),
        batch_size=1,
        cache=str(tmp_path / "responses.jsonl"),
    )
    reported = []
    pipe.progress = reported.append
    list(pipe.pipe((nlp.make_doc(t) for t in texts), batch_size=32))
    assert reported == [2, 2, 2] and pipe.model.calls == [2, 2, 2]
    reported.clear()
    list(pipe.pipe((nlp.make_doc(t) for t in texts), batch_size=32))  # now all cached
    assert reported == [6] and pipe.model.calls == [2, 2, 2]


def test_evaluate_shows_progress_in_queries(bench):
    tmp_path, cfg, data = bench
    config_path = _cached_pipeline(tmp_path, [lambda q, m: json.dumps(m)] * len(PASSAGES))
    result = _run(config_path, "-d", "tiny", "--benchmarks", cfg, "--data-dir", data, "-o", tmp_path / "out")
    assert "6/6" in result.stderr and "query/s" in result.stderr


def test_without_matplotlib_the_chart_is_left_out_and_the_extra_to_install_is_named(bench, monkeypatch):
    import sys

    tmp_path, cfg, data = bench
    config_path = _cached_pipeline(tmp_path, [lambda q, m: json.dumps(m)] * len(PASSAGES))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    out = tmp_path / "out"
    result = _run(config_path, "-d", "tiny", "--benchmarks", cfg, "--data-dir", data, "-o", out)
    assert (out / "table.md").exists() and not (out / "f1.png").exists()
    assert 'No f1.png: the bar chart needs matplotlib, the [plot] extra (pip install -e ".[plot]")' in " ".join(
        result.output.split()
    )


def test_a_group_name_stands_for_its_benchmarks_in_file_order_from_the_packaged_definitions():
    from spacy_universalner.eval.benchmarks import DEFAULT_CONFIG, load_benchmarks

    assert DEFAULT_CONFIG.parent.name == "eval"  # package data: present in a wheel, not only in a checkout
    seven = [
        "mit_movie",
        "mit_restaurant",
        "crossner_ai",
        "crossner_literature",
        "crossner_music",
        "crossner_politics",
        "crossner_science",
    ]
    assert list(load_benchmarks(None, ["zero-shot"])) == seven
    assert list(load_benchmarks(None, ["conll2003", "zero-shot", "mit_movie"])) == ["conll2003", *seven]


def test_evaluate_pipeline_is_the_command_without_the_command_line(bench):
    """eval.run.evaluate_pipeline: the same reports as `evaluate`, each benchmark's result as it comes."""
    from spacy_universalner.eval.benchmarks import load_benchmarks
    from spacy_universalner.eval.run import MissingBenchmarkFile, evaluate_pipeline

    tmp_path, cfg, data = bench
    config_path = _cached_pipeline(tmp_path, [lambda q, m: json.dumps(m)] * len(PASSAGES))
    seen = []
    paths = evaluate_pipeline(
        config_path,
        load_benchmarks(cfg, ["tiny"], data),
        tmp_path / "lib",
        name="cached",
        on_result=lambda name, benchmark, result, asked: seen.append((name, result["uniner"]["f1"], asked)),
    )
    assert seen == [("tiny", pytest.approx(1.0), True)]
    assert paths["metrics"] == tmp_path / "lib" / "metrics.json"
    metrics = json.loads(paths["metrics"].read_text())
    assert metrics["datasets"]["tiny"]["uniner"]["f1"] == pytest.approx(1.0)
    _run(config_path, "-d", "tiny", "--benchmarks", cfg, "--data-dir", data, "-o", tmp_path / "cli", "--name", "cached")
    from_cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert from_cli["datasets"]["tiny"]["uniner"] == metrics["datasets"]["tiny"]["uniner"]
    with pytest.raises(MissingBenchmarkFile) as missing:
        evaluate_pipeline(config_path, load_benchmarks(cfg, ["tiny"], tmp_path / "nowhere"), tmp_path / "x")
    assert missing.value.benchmark == "tiny" and "tiny.json" in str(missing.value.missing)
