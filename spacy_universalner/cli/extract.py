"""``extract``: run the ``universal_ner`` pipe over text and show or save the entities.

This is the README's main job: a real extraction with a model the user names (the packaged
``uniner-span``, a hub id or a local folder), from the command line, with no config file to write.
"""
import json
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import typer

from .app import app


def _read_records(path: Path, field: str) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """``(text, record)`` per non-empty line: a JSONL object is its own record (every field is written
    back, so an ``id`` still joins), a plain line becomes ``{"text": line}``."""
    with path.open(encoding="utf8") as file_:
        for number, line in enumerate(file_, 1):
            if not line.strip():
                continue
            if path.suffix == ".jsonl":
                try:
                    record = json.loads(line)
                    text = record[field]
                except (ValueError, KeyError, TypeError) as err:
                    raise typer.BadParameter(f"{path}:{number}: expected a JSON object with a {field!r} field ({err}).")
                yield text, record
            else:
                text = line.rstrip("\n")
                yield text, {"text": text}


def build_pipeline(
    model: str, labels: Union[str, List[str]], base: str = "blank:en", device: str = "auto", dtype: str = "auto",
    batch_size: int = 8, max_new_tokens: int = 256, cache: Optional[str] = None,
):
    """A pipeline with ``universal_ner`` added: on a blank language (``blank:en``) or a saved/installed pipeline."""
    import spacy

    from ..backends import backend_config

    nlp = spacy.blank(base.split(":", 1)[1]) if base.startswith("blank:") else spacy.load(base)
    nlp.add_pipe("universal_ner", config={
        "labels": labels,
        "model": backend_config(model, device, dtype),
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
        "cache": cache,
    })
    return nlp


@app.command("extract")
def extract_command(
    texts: List[str] = typer.Argument(None, help="Texts to read; or use --input."),
    model: str = typer.Option("uniner-span", "--model", "-m", help="uniner-span (the packaged span model: offline, CPU), a UniNER checkpoint (hub id such as Universal-NER/UniNER-7B-type, or a local folder) or a GLiNER model (folder or hub id)."),
    labels: str = typer.Option("person,organization,location", "--labels", "-l", help="Comma-separated entity types to ask for."),
    input_path: Optional[Path] = typer.Option(None, "--input", "-i", exists=True, dir_okay=False, help="A .txt file (one text per line) or .jsonl file."),
    text_field: str = typer.Option("text", "--text-field", help="Field holding the text in JSONL input."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write one JSON object per text here (JSONL)."),
    base: str = typer.Option("blank:en", "--base", help="Pipeline to add universal_ner to: blank:LANG or a spaCy pipeline name/path."),
    device: str = typer.Option("auto", help="cpu, cuda, cuda:1 or auto."),
    dtype: str = typer.Option("auto", help="auto, float32, float16 or bfloat16."),
    batch_size: int = typer.Option(8, help="Docs per model call."),
    max_new_tokens: int = typer.Option(256, help="Answer length cap (UniNER: 256)."),
    cache: Optional[Path] = typer.Option(None, help="JSONL response cache to read and append to."),
) -> None:
    """Find entities of any types in text with a UniNER model."""
    from tqdm import tqdm
    from wasabi import msg

    if not texts and input_path is None:
        raise typer.BadParameter("Give texts as arguments or a file with --input.")
    try:
        nlp = build_pipeline(model, labels, base, device, dtype, batch_size, max_new_tokens, str(cache) if cache else None)
    except ValueError as err:  # bad labels or settings: the message says what is wrong
        msg.fail(str(err), exits=1)
    stream = [(text, {"text": text}) for text in texts or []]
    if input_path:
        stream += list(_read_records(input_path, text_field))
    out = output.open("w", encoding="utf8") if output else None
    from ..types import BackendError

    try:
        docs = nlp.pipe(stream, batch_size=batch_size, as_tuples=True)
        for doc, record in tqdm(docs, total=len(stream), disable=len(stream) < 2, file=sys.stderr):
            ents = [{"text": e.text, "label": e.label_, "start": e.start_char, "end": e.end_char} for e in doc.ents]
            if out:
                # The input's fields come first and are kept; offsets refer to its text field.
                result = {**record, "ents": ents, "unaligned": doc._.uniner_unaligned}
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
            else:
                msg.divider(doc.text[:80])
                rows = [(e["text"], e["label"], e["start"], e["end"]) for e in ents]
                if rows:
                    msg.table(rows, header=("entity", "label", "start", "end"))  # prints; returns None
                else:
                    msg.text("(no entities)")
                for item in doc._.uniner_unaligned or []:
                    msg.warn(f"unaligned {item['label']}: {item['text']!r}")
    except BackendError as err:
        msg.fail(str(err), exits=1)
    finally:
        if out:
            out.close()
    if output:
        msg.good(f"Wrote {len(stream)} result(s) to {output}")
