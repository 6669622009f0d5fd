"""Small JSONL helpers shared by the distillation steps."""
import json
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Tuple, Union


def read_jsonl(path: Union[str, Path]) -> Iterator[Dict[str, Any]]:
    """Objects from a JSONL file; blank lines are skipped, a broken line is an error with its number."""
    for _, record in read_jsonl_numbered(path):
        yield record


def read_jsonl_numbered(path: Union[str, Path]) -> Iterator[Tuple[int, Dict[str, Any]]]:
    """``(line number, object)`` pairs, for messages that name the line of a bad record."""
    with Path(path).open("r", encoding="utf8") as file_:
        for number, line in enumerate(file_, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except ValueError as err:
                raise ValueError(f"{path}:{number} is not valid JSON: {err}") from err


def write_jsonl(path: Union[str, Path], records: Iterable[Dict[str, Any]]) -> int:
    """Write records (creating parent folders); returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf8") as file_:
        for record in records:
            file_.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count
