"""``evaluate``: score a spaCy pipeline on UniNER benchmarks; write metrics JSON, table and plot.

The command reads its options and prints; the evaluation is :func:`..eval.run.evaluate_pipeline`.
"""

from pathlib import Path
from typing import Any, Dict, List, Optional

import typer
from wasabi import msg

from .app import app


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
        help=(
            "Folder holding the benchmark files (default: $UNINER_DATA_DIR, else --data-dir-default, else the "
            "paths.data setting)"
        ),
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
        help=(
            "Row name in the table and metrics.json (default: the model's name from the pipeline config, else "
            "the pipeline's file name)"
        ),
    ),
) -> None:
    """Evaluate PIPELINE under UniNER's protocol. Extra --section.key=value options override the
    pipeline config, e.g. --components.universal_ner.cache=responses.jsonl."""
    from spacy.cli._util import parse_config_overrides

    from ..eval.benchmarks import Benchmark, load_benchmarks
    from ..eval.run import MissingBenchmarkFile, evaluate_pipeline, parse_label_map
    from ..types import BackendError

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

    def show(bench_name: str, benchmark: Benchmark, result: Dict[str, Any], asked: bool) -> None:
        if not asked and result["uniner"]["n_pred"] == 0:
            msg.warn(
                f"{bench_name}: the pipeline predicted no entity of the benchmark's types "
                f"({', '.join(benchmark.queries[:6])}...). Map its labels with --label-map, e.g. PERSON=person."
            )
        u = result["uniner"]
        msg.good(
            f"{bench_name}: F1 {100 * u['f1']:.2f} (P {100 * u['precision']:.2f}, R {100 * u['recall']:.2f}), "
            f"span F1 {100 * result['spans']['f1']:.2f}, {result['n_docs']} docs, {result['n_queries']} queries"
        )

    try:
        paths = evaluate_pipeline(
            pipeline,
            benchmarks,
            output,
            overrides=overrides,
            label_map=mapping,
            spans_keys=spans_key,
            ask_queries=not keep_labels,
            limit=limit,
            seed=seed,
            batch_size=batch_size,
            name=name,
            on_result=show,
        )
    except MissingBenchmarkFile as err:
        msg.fail(
            f"{err.benchmark}: benchmark file not found ({err.missing}). Pass --data-dir DIR or set "
            "UNINER_DATA_DIR to the folder holding the benchmark files (e.g. DIR/universalner_eval/; under "
            "`spacy project run`, UNINER_DATA_DIR or --vars.data_dir DIR), or fetch them with "
            "`spacy project assets --extra`.",
            exits=1,
        )
    except BackendError as err:
        msg.fail(str(err), exits=1)
    msg.info("Wrote " + ", ".join(str(p) for p in paths.values()))
    if "plot" not in paths:
        msg.warn('No f1.png: the bar chart needs matplotlib, the [plot] extra (pip install -e ".[plot]").')
