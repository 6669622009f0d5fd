"""``extract``: run the ``universal_ner`` pipe over text and show or save the entities.

This is the README's main job: a real extraction with a model the user names (the packaged
``uniner-span``, a hub id or a local folder), from the command line, with no config file to write.
With ``--output`` it streams and resumes (:mod:`..extract`); ``--engine ray`` spreads it over Ray
actors (:mod:`..distributed`), on one machine or a cluster. The pipeline is built by
:func:`..extract.build_pipeline`; this module reads the options and shows or reports the results.
"""

import sys
from functools import partial
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer
from wasabi import msg

# build_pipeline and parse_labels lived here; they are library functions of ..extract now (imported here too,
# for code that imported them from this module: benchmarks/extract_scale.py).
from ..extract import build_pipeline, parse_labels
from .app import app


def _show(doc) -> None:
    msg.divider(doc.text[:80])
    rows = [(e.text, e.label_, e.start_char, e.end_char) for e in doc.ents]
    if rows:
        msg.table(rows, header=("entity", "label", "start", "end"))  # prints; returns None
    else:
        msg.text("(no entities)")
    for item in doc._.uniner_unaligned or []:
        msg.warn(f"unaligned {item['label']}: {item['text']!r}")


@app.command("extract")
def extract_command(
    texts: List[str] = typer.Argument(None, help="Texts to read; or use --input."),
    model: str = typer.Option(
        "uniner-span",
        "--model",
        "-m",
        help=(
            "uniner-span (the packaged span model: offline, CPU), a UniNER checkpoint (hub id such as "
            "Universal-NER/UniNER-7B-type, or a local folder) or a GLiNER model (folder or hub id)."
        ),
    ),
    labels: str = typer.Option(
        "person,organization,location",
        "--labels",
        "-l",
        help=(
            "Comma-separated entity types to ask for, or LABEL=type pairs (PER=person,ORG=organization) to set "
            "other labels than the types asked."
        ),
    ),
    input_path: Optional[str] = typer.Option(
        None,
        "--input",
        "-i",
        help="A .txt file (one text per line) or .jsonl file, or a glob of them ('corpus/*.jsonl'); read lazily.",
    ),
    text_field: str = typer.Option("text", "--text-field", help="Field holding the text in JSONL input."),
    id_field: str = typer.Option(
        "id",
        "--id-field",
        help=(
            "Field holding each record's id (a record without one gets FILE:LINE); a rerun skips ids already "
            "in --output."
        ),
    ),
    output: Optional[Path] = typer.Option(
        None,
        "--output",
        "-o",
        help="Append one JSON object per text here (JSONL; a folder of shards with --engine ray); a rerun resumes.",
    ),
    base: str = typer.Option(
        "blank:en", "--base", help="Pipeline to add universal_ner to: blank:LANG or a spaCy pipeline name/path."
    ),
    device: str = typer.Option("auto", help="cpu, cuda, cuda:1 or auto."),
    dtype: str = typer.Option("auto", help="auto, float32, float16 or bfloat16."),
    batch_size: int = typer.Option(8, help="Docs per model call (and per durable append to --output)."),
    max_new_tokens: int = typer.Option(256, help="Answer length cap (UniNER: 256)."),
    cache: Optional[Path] = typer.Option(None, help="JSONL response cache to read and append to."),
    n_process: int = typer.Option(
        1, "--n-process", help="Worker processes on this machine (CPU backends; one torch thread each)."
    ),
    engine: str = typer.Option(
        "local",
        "--engine",
        help=(
            "local (this process, or --n-process workers) or ray (Ray Data actors: this machine or a cluster; "
            "needs the [ray] extra and --output)."
        ),
    ),
    actors: int = typer.Option(
        2, "--actors", help="--engine ray: model copies (actors), each loading its own pipeline."
    ),
    gpus_per_actor: float = typer.Option(
        0,
        "--gpus-per-actor",
        help="--engine ray: GPUs per actor (1: one model copy per GPU; 0: CPU actors, e.g. for uniner-span).",
    ),
    cpus_per_actor: float = typer.Option(
        1, "--cpus-per-actor", help="--engine ray: CPUs reserved per actor (its torch threads)."
    ),
    address: Optional[str] = typer.Option(
        None,
        "--address",
        help="--engine ray: a running Ray cluster to join ('auto' or host:port); default: start Ray on this machine.",
    ),
) -> None:
    """Find entities of any types in text with a UniNER model."""
    from ..extract import Input, expand_inputs, extract_to_jsonl, read_inputs

    texts = texts or []
    if not texts and input_path is None:
        msg.fail("Give texts as arguments or a file with --input.", exits=1)
    if engine not in ("local", "ray"):
        msg.fail(f"--engine must be local or ray, got {engine!r}.", exits=1)
    try:
        parsed_labels = parse_labels(labels)
        paths = expand_inputs([input_path]) if input_path else []
    except ValueError as err:
        msg.fail(str(err), exits=1)
    source = " and ".join([f"{len(texts)} text argument(s)"] * bool(texts) + [str(input_path)] * bool(input_path))
    settings: Dict[str, Any] = dict(
        model=model,
        labels=parsed_labels,
        base=base,
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        cache=str(cache) if cache else None,
    )
    if engine == "ray":
        if output is None or texts:
            msg.fail("--engine ray reads --input files and writes an --output folder of shards.", exits=1)
        try:
            build_pipeline(**settings)  # settings checked here, before Ray starts (no model loads yet)
        except ValueError as err:
            msg.fail(str(err), exits=1)
        return _extract_with_ray(
            settings, paths, output, text_field, id_field, actors, gpus_per_actor, cpus_per_actor, address, source
        )
    try:
        nlp = build_pipeline(**settings)
    except ValueError as err:  # bad labels or settings: the message says what is wrong
        msg.fail(str(err), exits=1)
    arguments = [Input(text, {id_field: f"text:{i}", "text": text}) for i, text in enumerate(texts, 1)]
    inputs = (item for part in (arguments, read_inputs(paths, text_field, id_field)) for item in part)
    from ..types import BackendError

    try:
        if output:
            stats = _extract_to_file(nlp, inputs, output, paths, id_field, batch_size, n_process, extract_to_jsonl)
        else:
            shown = 0
            stream = ((item.text, item.record) for item in inputs)
            for doc, _ in nlp.pipe(stream, batch_size=batch_size, as_tuples=True, n_process=n_process):
                _show(doc)
                shown += 1
            if not shown:
                msg.fail(f"No text in {source}: every line is blank.", exits=1)
    except (BackendError, ValueError) as err:
        msg.fail(str(err), exits=1)
    if output:
        if not stats.written and not stats.skipped:
            msg.fail(f"No text in {source}: every line is blank; nothing written to {output}.", exits=1)
        kept = f"; skipped {stats.skipped} already there (delete {output} to start over)" if stats.skipped else ""
        msg.good(f"Wrote {stats.written} result(s) to {output}{kept}")


def _extract_to_file(nlp, inputs, output, paths, id_field, batch_size, n_process, extract_to_jsonl):
    """Stream into ``output`` with a progress bar over the input's bytes (its size is known; its lines are not)."""
    from tqdm import tqdm

    total = sum(path.stat().st_size for path in paths) or None
    with tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, disable=total is None, desc="extract") as bar:

        def on_batch(stats, position):
            bar.update(max(0, position - bar.n))
            bar.set_postfix(written=stats.written, skipped=stats.skipped, refresh=False)

        return extract_to_jsonl(
            nlp, inputs, output, id_field=id_field, batch_size=batch_size, n_process=n_process, on_batch=on_batch
        )


def _extract_with_ray(
    settings, paths, output, text_field, id_field, actors, gpus_per_actor, cpus_per_actor, address, source
) -> None:
    from ..distributed import extract_with_ray
    from ..types import BackendError

    try:
        stats = extract_with_ray(
            partial(build_pipeline, **settings),
            paths,
            output,
            text_field=text_field,
            id_field=id_field,
            actors=actors,
            gpus_per_actor=gpus_per_actor,
            cpus_per_actor=cpus_per_actor,
            batch_size=settings["batch_size"],
            address=address,
        )
    except (BackendError, ValueError, ImportError) as err:
        msg.fail(str(err), exits=1)
    if not stats.written and not stats.skipped:
        msg.fail(f"No text in {source}: every line is blank; nothing written to {output}.", exits=1)
    kept = f"; skipped {stats.skipped} already there" if stats.skipped else ""
    msg.good(f"Wrote {stats.written} result(s) to {len(stats.shards)} shard(s) in {output}{kept}")
