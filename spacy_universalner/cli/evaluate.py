"""``evaluate``: score a spaCy pipeline on UniNER benchmarks; write metrics JSON, table and plot."""
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import typer

from .app import app


def load_pipeline(pipeline: Path, overrides: Dict[str, Any]):
    """A saved pipeline folder (``spacy.load``) or a ``.cfg`` (built from the config)."""
    import spacy
    from spacy import util

    if pipeline.is_dir():
        return spacy.load(pipeline, config=overrides)
    config = util.load_config(pipeline, overrides=overrides, interpolate=False)
    return util.load_model_from_config(config, auto_fill=True, validate=True)


def output_override(pipeline: Path, overrides: Dict[str, Any], output: Path) -> Dict[str, Any]:
    """``paths.output`` set to ``--output`` where the pipeline's config declares that variable.

    configs/benchmarks_pipeline.cfg keeps its response cache at ``${paths.output}/responses.jsonl``, so
    the answers behind a results folder are kept in it, wherever ``--output`` points.
    """
    from spacy import util

    config_path = pipeline / "config.cfg" if pipeline.is_dir() else pipeline
    if "paths.output" in overrides or not config_path.is_file():
        return {}
    paths = util.load_config(config_path, interpolate=False).get("paths", {})
    return {"paths.output": str(output)} if "output" in paths else {}


#: Components whose config names the model that answers: (factory, keys to the name in its `model` block).
_MODEL_NAME_KEYS = {"universal_ner": ("name", "model"), "llm": ("name", "backend.name")}


def _model_names(nlp) -> List[Tuple[str, str, str]]:
    """``(component, key, name)`` for each component whose ``model`` block names the model that answers."""
    found = []
    for pipe_name in nlp.pipe_names:
        keys = _MODEL_NAME_KEYS.get(nlp.get_pipe_meta(pipe_name).factory, ())
        model = nlp.get_pipe_config(pipe_name).get("model") or {}
        for key in keys:
            value: Any = model
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, str) and value:
                found.append((pipe_name, key, value))
                break
    return found


def model_option(nlp) -> Optional[str]:
    """The config override that gives the pipeline's model as a local folder, for loading errors to suggest
    (``evaluate`` has no ``--model``): e.g. ``--components.universal_ner.model.name=./my-model``."""
    found = _model_names(nlp)
    return f"--components.{found[0][0]}.model.{found[0][1]}=./my-model" if found else None


def model_name(nlp) -> Optional[str]:
    """The model that produced the pipeline's answers, for the results' row: the ``universal_ner`` backend's
    name (or a spacy-llm model's), else the name of a packaged pipeline (``en_core_web_sm``); None if neither."""
    names = [name for _, _, name in _model_names(nlp)]
    if names:
        return " + ".join(dict.fromkeys(names))
    if nlp.meta.get("name") and nlp.meta["name"] != "pipeline":
        return f"{nlp.meta.get('lang', 'xx')}_{nlp.meta['name']}"
    return None


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
    datasets: str = typer.Option(
        "crossner_ai",
        "--datasets",
        "-d",
        help="Comma-separated benchmark names or groups (zero-shot: the paper's seven; other; zero-shot-bio)",
    ),
    output: Path = typer.Option(
        Path("metrics"),
        "--output",
        "-o",
        help="Folder for metrics.json, table.md and f1.png (and the response cache of a config that sets paths.output)",
    ),
    benchmarks_config: Optional[Path] = typer.Option(
        None, "--benchmarks", help="Benchmark definitions (default: the package's eval/benchmarks.cfg)"
    ),
    data_dir: Optional[Path] = typer.Option(
        None,
        "--data-dir",
        help=("Folder holding the benchmark files (default: $UNINER_DATA_DIR, else --data-dir-default, else the "
              "paths.data setting)"),
    ),
    data_dir_default: Optional[str] = typer.Option(
        None,
        "--data-dir-default",
        help="Data folder when neither --data-dir nor $UNINER_DATA_DIR is given (project.yml passes its data_dir var)",
    ),
    label_map: Optional[str] = typer.Option(
        None, "--label-map", help="Pipeline label -> benchmark type: JSON file or PERSON=person,ORG=organization"
    ),
    spans_key: List[str] = typer.Option(
        [], "--spans-key", help="Also read predicted spans from doc.spans[KEY] (repeatable)"
    ),
    keep_labels: bool = typer.Option(
        False, "--keep-labels", help="Do not set universal_ner's labels to each benchmark's queries"
    ),
    limit: Optional[int] = typer.Option(
        None, "--limit", "-n", help="At most N passages per dataset (seeded sample; 0: all)"
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for --limit"),
    batch_size: int = typer.Option(32, "--batch-size", "-b"),
    name: Optional[str] = typer.Option(
        None,
        "--name",
        help=("Row name in the table and metrics.json (default: the model's name from the pipeline config, else "
              "the pipeline's file name)"),
    ),
) -> None:
    """Evaluate PIPELINE under UniNER's protocol. Extra --section.key=value options override the
    pipeline config, e.g. --components.universal_ner.cache=responses.jsonl."""
    from spacy.cli._util import parse_config_overrides
    from wasabi import msg

    from ..eval.benchmarks import load_benchmarks
    from ..eval.report import write_reports
    from ..eval.run import parse_label_map, uniner_pipes
    from ..models import folder_option

    # `section.key=value` without dashes is accepted too: weasel strips them from project vars.
    overrides = parse_config_overrides([a if a.startswith("-") else f"--{a}" for a in ctx.args])
    mapping = parse_label_map(label_map)
    names = [d.strip() for d in datasets.split(",") if d.strip()]

    try:
        benchmarks = load_benchmarks(benchmarks_config, names, data_dir, data_dir_default)
    except KeyError as err:
        msg.fail(str(err.args[0]), exits=1)
    except FileNotFoundError as err:
        msg.fail(str(err), exits=1)
    overrides.update(output_override(pipeline, overrides, output))
    nlp = load_pipeline(pipeline, overrides)
    row_name = name or model_name(nlp) or pipeline.stem
    reconfigure = [] if keep_labels else uniner_pipes(nlp)
    option = model_option(nlp)
    with folder_option(option) if option else nullcontext():  # a loading error names this command's option
        results = _evaluate_all(nlp, benchmarks, reconfigure, mapping, spans_key, limit, seed, batch_size)
    meta = {"pipeline": str(pipeline), "limit": limit, "seed": seed, "overrides": overrides, "label_map": mapping}
    paths = write_reports(results, row_name, output, meta)
    msg.info("Wrote " + ", ".join(str(p) for p in paths.values()))
    if "plot" not in paths:
        msg.warn("No f1.png: the bar chart needs matplotlib, the [plot] extra (pip install -e \".[plot]\").")


def _evaluate_all(
    nlp, benchmarks, reconfigure, mapping, spans_key, limit, seed, batch_size
) -> Dict[str, Dict[str, Any]]:
    """Each benchmark's results, printed as they come; a missing file or a model that cannot answer ends the run."""
    from wasabi import msg

    from ..eval.run import evaluate_docs
    from ..types import BackendError

    results: Dict[str, Dict[str, Any]] = {}
    for bench_name, benchmark in benchmarks.items():
        try:
            golds = benchmark.load(nlp, limit=limit, seed=seed)
        except FileNotFoundError as err:
            msg.fail(
                f"{bench_name}: benchmark file not found ({err.filename or err}). Pass --data-dir DIR or set "
                "UNINER_DATA_DIR to the folder holding the benchmark files (e.g. DIR/universalner_eval/; under "
                "`spacy project run`, UNINER_DATA_DIR or --vars.data_dir DIR), or fetch them with "
                "`spacy project assets --extra`.",
                exits=1,
            )
        if reconfigure:
            ask_benchmark_queries(
                nlp, reconfigure, list(dict.fromkeys(q for d in golds for q in benchmark.queries_for(d)))
            )
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
    return results
