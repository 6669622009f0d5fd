"""Extraction over a corpus: read lazily, append durably, resume by id.

A corpus run can take days and be killed at any point, so every input record has an ``id`` (its own, or
one derived from where it sits: ``"notes.txt:12"``, file name and line number), results are appended a
batch at a time with :mod:`.jsonl`'s crash-safe rule (flushed and fsynced; a torn last line is dropped
before the next append), and a rerun skips every id already in the output. Memory stays flat in the
input's size: one batch of records is in flight, plus the set of ids a rerun skips.

The same reader, result format and skip rule serve ``extract`` on one machine and the Ray engine
(:mod:`.distributed`), which writes one shard per actor into a folder. :func:`build_pipeline` makes the pipeline
both run (``universal_ner`` on a blank language or a saved pipeline), from the settings ``extract`` takes, and
:func:`parse_labels` reads its ``--labels`` text.
"""

import glob
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

from .jsonl import append_lines, encode_line, read_records, settle_tail

PathLike = Union[str, Path]


def parse_labels(text: str) -> Union[str, Dict[str, str]]:
    """``person,organization`` as given (``universal_ner`` reads and checks a comma list);
    ``PER=person,ORG=organization`` as the config's mapping (label -> type asked). A ``;`` is refused: it would
    silently make one label of two. Raises ``ValueError`` with a message that says what to write."""
    if ";" in text:
        suggestion = ",".join(part.strip() for part in text.split(";") if part.strip())
        raise ValueError(f"Labels are separated by commas, not semicolons (got {text!r}): write {suggestion!r}.")
    items = [item.strip() for item in text.split(",")]
    if not any("=" in item for item in items):
        return text  # normalize_labels reads (and checks) the comma list
    mapping: Dict[str, str] = {}
    for item in items:
        if not item:
            continue
        label, _, query = (part.strip() for part in item.partition("="))
        if not label or ("=" in item and not query):
            raise ValueError(
                f"Cannot read {item!r} in --labels {text!r}: write LABEL=type pairs, e.g. "
                f"'PER=person,ORG=organization'."
            )
        if label in mapping:
            raise ValueError(f"Duplicate label {label!r} in `labels` (got {text!r}): name each type once.")
        mapping[label] = query or label
    return mapping


def build_pipeline(
    model: str,
    labels: Union[str, List[str], Dict[str, str]],
    base: str = "blank:en",
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int = 8,
    max_new_tokens: int = 256,
    cache: Optional[str] = None,
):
    """A pipeline with ``universal_ner`` added: on a blank language (``blank:en``) or a saved/installed pipeline.

    ``model`` is a name :func:`.backends.backend_config` resolves (``uniner-span``, a hub id, a folder). Bad
    labels or settings raise ``ValueError`` before any model loads (the backend loads on first use).
    """
    import spacy

    from .backends import backend_config

    nlp = spacy.blank(base.split(":", 1)[1]) if base.startswith("blank:") else spacy.load(base)
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": labels,
            "model": backend_config(model, device, dtype),
            "batch_size": batch_size,
            "max_new_tokens": max_new_tokens,
            "cache": cache,
        },
    )
    return nlp


class Input(NamedTuple):
    """One record to extract from: its ``text``, the ``record`` written back (with its id) and ``position``,
    the input bytes read once this record was (for a progress bar)."""

    text: str
    record: Dict[str, Any]
    position: int = 0


def expand_inputs(patterns: Iterable[PathLike]) -> List[Path]:
    """Files named by paths or glob patterns (``corpus/*.jsonl``), each pattern's matches sorted."""
    paths: List[Path] = []
    for pattern in patterns:
        pattern = str(pattern)
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise ValueError(f"No file matches {pattern!r}.")
        for match in matches:
            path = Path(match)
            if not path.is_file():
                raise ValueError(f"{str(path)!r} is not a file: give a .txt (one text per line) or .jsonl file.")
            paths.append(path)
    return paths


def derived_id(path: Path, line: int) -> str:
    """The id of a record without one: file name and line number (stable while the file is unchanged)."""
    return f"{path.name}:{line}"


def read_lines(
    path: PathLike,
    text_field: str = "text",
    id_field: str = "id",
    start: int = 0,
    span: Optional[Tuple[int, int, int]] = None,
) -> Iterator[Input]:
    """The records of one file, lazily: a ``.jsonl`` line is its own record, any other line becomes
    ``{"text": line}``; a record without ``id_field`` gets :func:`derived_id`. Blank lines are skipped
    (and still counted, so ids stay put). ``span``: ``(first byte, end byte, number of the first line)``
    of a part of the file (see :func:`plan_parts`); ``start``: the position the file begins at."""
    path = Path(path)
    is_jsonl = path.suffix == ".jsonl"
    offset, end, first = span or (0, None, 1)
    position = start + offset
    with path.open("rb") as file_:
        file_.seek(offset)
        for number, raw in enumerate(file_, first):
            if end is not None and position >= start + end:
                return
            position += len(raw)
            try:
                line = raw.decode("utf8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}:{number} is not UTF-8 ({err}).") from None
            if not line.strip():
                continue
            if is_jsonl:
                try:
                    record = json.loads(line)
                    text = record[text_field]
                    if not isinstance(text, str):
                        raise TypeError(f"{text_field!r} is {type(text).__name__}, not a string")
                except (ValueError, KeyError, TypeError) as err:
                    raise ValueError(
                        f"{path}:{number}: expected a JSON object with a {text_field!r} string field ({err})."
                    ) from None
            else:
                text = line.rstrip("\r\n")
                record = {"text": text}
            if id_field not in record:
                record = {id_field: derived_id(path, number), **record}
            elif not isinstance(record[id_field], (str, int)) or isinstance(record[id_field], bool):
                raise ValueError(
                    f"{path}:{number}: the {id_field!r} field must be a string or an integer, got {record[id_field]!r}."
                )
            yield Input(text, record, position)


def plan_parts(path: PathLike, lines_per_part: int) -> Iterator[Tuple[int, int, int]]:
    """``(first byte, end byte, number of the first line)`` of consecutive parts of ``lines_per_part`` lines,
    for reading one file in parallel with the ids :func:`read_lines` gives it whole (one pass, no record kept)."""
    offset, first, number = 0, 1, 0
    with Path(path).open("rb") as file_:
        position = 0
        for number, raw in enumerate(file_, 1):
            position += len(raw)
            if number - first + 1 >= lines_per_part:
                yield offset, position, first
                offset, first = position, number + 1
    if number >= first:
        yield offset, position, first


def read_inputs(paths: Sequence[PathLike], text_field: str = "text", id_field: str = "id") -> Iterator[Input]:
    """The records of several files in turn (see :func:`read_lines`); positions count across files."""
    start = 0
    for path in paths:
        yield from read_lines(path, text_field, id_field, start)
        start += Path(path).stat().st_size


def result_record(doc, record: Dict[str, Any]) -> Dict[str, Any]:
    """What is written per input: the input's fields first (kept, so the id joins), then the entities
    (offsets into its text) and the strings that could not be placed."""
    ents = [{"text": e.text, "label": e.label_, "start": e.start_char, "end": e.end_char} for e in doc.ents]
    return {**record, "ents": ents, "unaligned": doc._.uniner_unaligned}


def done_ids(paths: Iterable[Path], id_field: str = "id") -> Set[Any]:
    """The ids already written to output files (a torn last line does not count: it is asked again)."""
    done: Set[Any] = set()
    for path in paths:
        if not path.exists():
            continue
        for number, record in enumerate(read_records(path), 1):
            if not isinstance(record, dict) or id_field not in record:
                raise ValueError(
                    f"{path} holds a record without {id_field!r} (record {number}): it was not written by extract; "
                    "give a new output path."
                )
            done.add(record[id_field])
    return done


def settle(path: Path) -> None:
    """Apply the torn-line rule to a finished output file (a killed run's shard is never appended to again)."""
    with path.open("r+b") as file_:
        settle_tail(file_)


@dataclass
class ExtractStats:
    """What a run did: records written now, and records skipped because an earlier run wrote them."""

    written: int = 0
    skipped: int = 0


def extract_to_jsonl(
    nlp,
    inputs: Iterable[Input],
    output: PathLike,
    *,
    id_field: str = "id",
    batch_size: int = 64,
    n_process: int = 1,
    on_batch: Optional[Callable[[ExtractStats, int], None]] = None,
) -> ExtractStats:
    """Run ``nlp`` over ``inputs`` and append one result per record to ``output`` (JSONL), resuming.

    Records whose id is in ``output`` already are skipped; results are appended ``batch_size`` at a
    time, each batch flushed and fsynced, so a kill loses at most the batch in flight and a rerun writes
    every id once. ``on_batch(stats, position)`` is called after each append.
    """
    output = Path(output)
    done = done_ids([output], id_field)
    stats = ExtractStats()
    last_position = [0]

    def todo() -> Iterator[tuple]:
        for item in inputs:
            last_position[0] = item.position
            if item.record[id_field] in done:
                stats.skipped += 1
                continue
            yield item.text, (item.record, item.position)

    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("a+b") as file_:
        lines: List[bytes] = []
        position = 0
        for doc, (record, position) in nlp.pipe(todo(), as_tuples=True, batch_size=batch_size, n_process=n_process):
            lines.append(encode_line(result_record(doc, record)))
            if len(lines) >= batch_size:
                append_lines(file_, lines)
                stats.written += len(lines)
                lines = []
                if on_batch:
                    on_batch(stats, position)
        if lines:
            append_lines(file_, lines)
            stats.written += len(lines)
        elif stats.written == 0:
            settle_tail(file_)  # nothing to add: a torn tail of a killed run still goes
    if on_batch:
        on_batch(stats, last_position[0])
    return stats
