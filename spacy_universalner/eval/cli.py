"""``evaluate``: score a spaCy pipeline on UniNER benchmarks; write metrics JSON, table and plot."""
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from ..cli import app


def load_pipeline(pipeline: Path, overrides: Dict[str, Any]):
    """A saved pipeline folder (``spacy.load``) or a ``.cfg`` (built from the config)."""
    import spacy
    from spacy import util

    if pipeline.is_dir():
        return spacy.load(pipeline, config=overrides)
    config = util.load_config(pipeline, overrides=overrides, interpolate=False)
    return util.load_model_from_config(config, auto_fill=True, validate=True)


def ask_benchmark_queries(nlp, names: List[str], queries: List[str]) -> None:
    """Make each ``universal_ner`` component ask exactly the benchmark's queries (no model reload)."""
    for name in names:
        nlp.get_pipe(name).initialize(labels=list(queries))


@app.command(
    "evaluate",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def evaluate_command(
    ctx: typer.Context,
    pipeline: Path = typer.Argument(..., help="A saved spaCy pipeline (folder) or a config (.cfg)", exists=True),
    datasets: str = typer.Option("crossner_ai", "--datasets", "-d", help="Comma-separated benchmark names, or 'zero-shot' for the paper's seven"),
    output: Path = typer.Option(Path("metrics"), "--output", "-o", help="Folder for metrics.json, table.md and f1.png"),
    benchmarks_config: Optional[Path] = typer.Option(None, "--benchmarks", help="Benchmark definitions (default: configs/benchmarks.cfg)"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding the benchmark files (default: $UNINER_DATA_DIR, else the paths.data setting)"),
    label_map: Optional[str] = typer.Option(None, "--label-map", help="Pipeline label -> benchmark type: JSON file or PERSON=person,ORG=organization"),
    spans_key: List[str] = typer.Option([], "--spans-key", help="Also read predicted spans from doc.spans[KEY] (repeatable)"),
    keep_labels: bool = typer.Option(False, "--keep-labels", help="Do not set universal_ner's labels to each benchmark's queries"),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="At most N passages per dataset (seeded sample; 0: all)"),
    seed: int = typer.Option(0, "--seed", help="Seed for --limit"),
    batch_size: int = typer.Option(32, "--batch-size", "-b"),
    name: Optional[str] = typer.Option(None, "--name", help="Model name for the table (default: the pipeline's file name)"),
) -> None:
    """Evaluate PIPELINE under UniNER's protocol. Extra --section.key=value options override the
    pipeline config, e.g. --components.universal_ner.cache=responses.jsonl."""
    from spacy.cli._util import parse_config_overrides
    from wasabi import msg

    from .benchmarks import load_benchmarks
    from .report import write_reports
    from .run import evaluate_docs, parse_label_map, uniner_pipes

    # `section.key=value` without dashes is accepted too: weasel strips them from project vars.
    overrides = parse_config_overrides([a if a.startswith("-") else f"--{a}" for a in ctx.args])
    mapping = parse_label_map(label_map)
    names = [d.strip() for d in datasets.split(",") if d.strip()]
    if names == ["zero-shot"]:
        names = ["mit_movie", "mit_restaurant", "crossner_ai", "crossner_literature", "crossner_music", "crossner_politics", "crossner_science"]
    from ..backends.base import BackendError

    try:
        benchmarks = load_benchmarks(benchmarks_config, names, data_dir)
    except KeyError as err:
        msg.fail(str(err.args[0]), exits=1)
    except FileNotFoundError as err:
        msg.fail(str(err), exits=1)
    model_name = name or pipeline.stem
    results: Dict[str, Dict[str, Any]] = {}
    nlp = load_pipeline(pipeline, overrides)
    reconfigure = [] if keep_labels else uniner_pipes(nlp)
    for bench_name, benchmark in benchmarks.items():
        try:
            golds = benchmark.load(nlp, limit=limit, seed=seed)
        except FileNotFoundError as err:
            msg.fail(
                f"{bench_name}: benchmark file not found ({err.filename or err}). Pass --data-dir DIR or set "
                "UNINER_DATA_DIR to the folder holding the benchmark files (e.g. DIR/universalner_eval/), "
                "or fetch them with `spacy project assets --extra`.",
                exits=1,
            )
        if reconfigure:
            ask_benchmark_queries(nlp, reconfigure, list(dict.fromkeys(q for d in golds for q in benchmark.queries_for(d))))
        try:
            result = evaluate_docs(nlp, benchmark, golds, mapping, spans_key, batch_size=batch_size)
        except BackendError as err:
            msg.fail(str(err), exits=1)
        if not reconfigure and result["uniner"]["n_pred"] == 0:
            msg.warn(
                f"{bench_name}: the pipeline predicted no entity of the benchmark's types "
                f"({', '.join(benchmark.queries[:6])}...). Map its labels with --label-map, e.g. PERSON=person."
            )
        result["paper"] = benchmark.paper
        results[bench_name] = result
        u = result["uniner"]
        msg.good(f"{bench_name}: F1 {100 * u['f1']:.2f} (P {100 * u['precision']:.2f}, R {100 * u['recall']:.2f}), "
                 f"span F1 {100 * result['spans']['f1']:.2f}, {result['n_docs']} docs, {result['n_queries']} queries")
    meta = {"pipeline": str(pipeline), "limit": limit, "seed": seed, "overrides": overrides, "label_map": mapping}
    paths = write_reports(results, model_name, output, meta)
    msg.info("Wrote " + ", ".join(str(p) for p in paths.values()))
