"""JSON Lines for files that long runs append to: one line format, one rule for a line a crash cut short.

The response cache and ``annotate``'s answers file are appended to while a model works, and a run can be
killed mid-write. The rule both follow: a *last* line without its newline is a write cut short when it
does not parse, and is dropped before anything is appended (what it held is asked again); one that parses
arrived whole and gets its newline. Unreadable lines elsewhere are skipped and counted by the reader,
never glued to. Every append is flushed and fsynced, so a crash loses at most the write in flight.
Files written in one go (``sample``'s passages) use srsly; :func:`read_records` reads both JSON lists and JSONL.
"""

import json
import os
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterable, Iterator, Tuple, Union


def encode_line(record: Dict[str, Any]) -> bytes:
    """One record as a UTF-8 line (without the newline). A lone surrogate (valid in a Python str, not in
    UTF-8) is written as a JSON ``\\ud800`` escape instead, so any text can be stored and read back."""
    try:
        return json.dumps(record, ensure_ascii=False).encode("utf8")
    except UnicodeEncodeError:
        return json.dumps(record).encode("ascii")


def split_lines(data: bytes) -> Iterator[Tuple[int, bytes, bool]]:
    """``(line number, raw line, complete)`` of every non-blank line; ``complete``: a newline follows it."""
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, 1):
        if raw.strip():
            yield number, raw, number < len(lines)


def settle_tail(file_: BinaryIO) -> int:
    """Apply the torn-line rule to a file opened with ``"a+b"`` or ``"r+b"``; return the bytes dropped."""
    file_.seek(0, os.SEEK_END)
    size = file_.tell()
    if size == 0:
        return 0
    start = max(0, size - 4096)
    while True:  # find the start of the last line, reading back in blocks
        file_.seek(start)
        block = file_.read(size - start)
        newline = block.rfind(b"\n")
        if newline >= 0 or start == 0:
            break
        start = max(0, start - 4096)
    tail_start = start + newline + 1 if newline >= 0 else 0
    file_.seek(tail_start)
    tail = file_.read()
    if not tail:
        return 0
    try:
        json.loads(tail)
    except (ValueError, RecursionError):  # UnicodeDecodeError included: a multi-byte character cut in two
        file_.truncate(tail_start)
        file_.flush()
        return len(tail)
    file_.seek(0, os.SEEK_END)
    file_.write(b"\n")
    file_.flush()
    return 0


def append_lines(file_: BinaryIO, lines: Iterable[bytes]) -> None:
    """Append encoded lines (see :func:`encode_line`) after :func:`settle_tail`, durably."""
    settle_tail(file_)
    file_.seek(0, os.SEEK_END)
    file_.write(b"".join(line + b"\n" for line in lines))
    file_.flush()
    os.fsync(file_.fileno())


def read_records(path: Union[str, Path]) -> Iterator[Dict[str, Any]]:
    """Records of a JSON-list or JSONL file. A broken line is an error naming it, except a broken *last*
    line: the tail of a killed run (skipped; whoever wrote it asks it again)."""
    path = Path(path)
    with path.open(encoding="utf8") as file_:
        head = file_.read(1)
        while head and head.isspace():
            head = file_.read(1)
        file_.seek(0)
        if head == "[":
            yield from json.load(file_)
            return
        broken = None
        for number, line in enumerate(file_, 1):
            if not line.strip():
                continue
            if broken:
                raise ValueError(broken)
            try:
                yield json.loads(line)
            except ValueError as err:
                broken = f"{path}:{number} is not valid JSON: {err}"


def read_numbered(path: Union[str, Path]) -> Iterator[Tuple[int, Any]]:
    """``(line number, object)`` of every non-blank line; any broken line is an error naming it."""
    with Path(path).open("r", encoding="utf8") as file_:
        for number, line in enumerate(file_, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except ValueError as err:
                raise ValueError(f"{path}:{number} is not valid JSON: {err}") from err
