"""``annotate``: ask the teacher about every passage, resumably.

Each answer is appended to the output JSONL (flushed and fsynced) the moment it arrives, so
killing the process loses at most the requests in flight. A rerun reads the file first, skips
every passage id already answered and cuts off a half-written last line, so no passage is asked
twice or written twice. An exclusive lock on the file stops a second process from writing to it
at the same time. Passage ids are compared as text, so ``1`` and ``"1"`` are one passage (the
second is skipped and counted as a repeat).
"""

import json
import logging
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Optional, Set, Tuple, Union

from ..http import AuthenticationError, Unreachable, redact
from ..jsonl import append_lines, encode_line, read_numbered, settle_tail, split_lines
from ..parsing import clean_answer
from .teachers import Teacher
from .tuples import parse_tuples

logger = logging.getLogger(__name__)

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, documented
    fcntl = None  # type: ignore[assignment]


class OutputLocked(RuntimeError):
    """Another process is writing the same annotations file."""


class AnnotationLog:
    """The append-only answers file: which passage ids are done, and a durable ``append``."""

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self.done: Set[str] = set()
        self.repaired_bytes = 0
        self.unreadable_lines = 0
        self._file: Optional[BinaryIO] = None  # open between __enter__ and __exit__

    def __enter__(self) -> "AnnotationLog":
        if self.path.exists() and not self.path.is_file():
            raise ValueError(
                f"{self.path} is not a regular file: give the path of a JSONL file (a new one is created)."
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = file_ = self.path.open("a+b")
        if fcntl is not None:
            try:
                fcntl.flock(file_.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                file_.close()
                raise OutputLocked(
                    f"{self.path} is being written by another annotate process; wait for it or stop it first."
                ) from None
        self._load(file_)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._file is not None:
            self._file.close()  # also releases the lock
            self._file = None

    def _load(self, file_: BinaryIO) -> None:
        file_.seek(0)
        for number, raw, complete in split_lines(file_.read()):
            try:
                record = json.loads(raw)
                passage = record["id"]
            except (ValueError, KeyError, TypeError):
                self.unreadable_lines += complete  # an unreadable last line is a write cut short: dropped below
                continue
            self.done.add(passage_id(passage, f"{self.path}:{number}"))
        # The tail a killed run left behind is dropped, so the file stays valid JSONL (it is re-asked);
        # a last record that arrived whole but without its newline gets one.
        self.repaired_bytes = settle_tail(file_)

    def append(self, record: Dict[str, Any]) -> None:
        if record["id"] in self.done:
            raise ValueError(f"Passage {record['id']} is already in {self.path}")
        if self._file is None:
            raise RuntimeError(f"{self.path} is not open: append inside 'with AnnotationLog(path) as log:'.")
        append_lines(self._file, [encode_line(record)])
        self.done.add(record["id"])


@dataclass
class AnnotateStats:
    total: int = 0
    already_done: int = 0
    answered: int = 0
    failed: int = 0
    unparsed: int = 0
    duplicate_ids: int = 0
    skipped_by_budget: int = 0
    stopped: Optional[str] = None

    @property
    def remaining(self) -> int:
        return self.total - self.already_done - self.answered


def passage_id(value: Any, where: str) -> str:
    """A passage id as text (ids are compared as text: ``1`` and ``"1"`` are one passage); ``where``
    (``file:line``) is named if the id is neither a string nor an integer."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{where}: a passage id must be a string or an integer, got {value!r}.")
    return str(value)


def load_passages(path: Union[str, Path]) -> Tuple[List[Dict[str, str]], int]:
    """Passages ``{"id", "text"}`` in file order, each id once (as text), and how many lines repeated an id;
    a bad line is an error naming it."""
    passages, seen, repeats = [], set(), 0
    for number, record in read_numbered(path):
        where = f"{path}:{number}"
        if not isinstance(record, dict) or not isinstance(record.get("text"), str) or "id" not in record:
            raise ValueError(f'{where}: expected a JSON object with an "id" and a "text" string, got {record!r:.200}.')
        key = passage_id(record["id"], where)
        if key in seen:
            repeats += 1
            continue
        seen.add(key)
        passages.append({"id": key, "text": record["text"]})
    return passages, repeats


def run_annotate(
    passages_path: Union[str, Path],
    output_path: Union[str, Path],
    teacher: Teacher,
    *,
    prompt: str = "type",
    budget: int = 0,
    max_consecutive_failures: int = 10,
    progress: bool = True,
) -> AnnotateStats:
    """Annotate every passage not yet in ``output_path``; ``budget`` caps the teacher calls of this run."""
    from tqdm import tqdm

    stats = AnnotateStats()
    passages, stats.duplicate_ids = load_passages(passages_path)
    stats.total = len(passages)
    with AnnotationLog(output_path) as log:
        if log.repaired_bytes:
            logger.warning("Removed a half-written last line (%d bytes) from %s", log.repaired_bytes, output_path)
        todo = [p for p in passages if p["id"] not in log.done]
        stats.already_done = stats.total - len(todo)
        if budget and len(todo) > budget:
            stats.skipped_by_budget = len(todo) - budget
            todo = todo[:budget]
        bar = tqdm(total=stats.total, initial=stats.already_done, unit="passage", desc="annotate", disable=not progress)
        failures = 0  # in a row
        window = max(1, teacher.concurrency) * 2
        queue = iter(todo)
        in_flight: Dict[Future, Dict[str, str]] = {}
        pool = ThreadPoolExecutor(max_workers=max(1, teacher.concurrency))
        try:
            while True:
                while stats.stopped is None and len(in_flight) < window:
                    passage = next(queue, None)
                    if passage is None:
                        break
                    in_flight[pool.submit(teacher, passage["text"])] = passage
                if not in_flight:
                    break
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    failures = _settle(
                        future,
                        in_flight.pop(future),
                        teacher,
                        prompt,
                        log,
                        stats,
                        bar,
                        failures,
                        max_consecutive_failures,
                    )
        finally:
            for future in in_flight:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
    return stats


def _settle(
    future: Future,
    passage: Dict[str, str],
    teacher: Teacher,
    prompt: str,
    log: AnnotationLog,
    stats: AnnotateStats,
    bar,
    failures: int,
    max_failures: int,
) -> int:
    """Record one finished teacher call: its answer appended to the log, or its failure counted (and the run
    stopped after ``max_failures`` in a row, or at once when the key is refused). Returns the failures in a row."""
    try:
        answer = future.result()
        if not isinstance(answer, str):  # e.g. a custom teacher's structured reply
            raise TypeError(f"the teacher's answer is {type(answer).__name__}, not text: {answer!r:.100}")
    except (AuthenticationError, Unreachable) as err:  # every other passage would fail the same way
        stats.stopped = stats.stopped or str(err)
        return failures
    except Exception as err:  # noqa: BLE001 - any teacher failure: record, retry next run
        stats.failed += 1
        failures += 1
        # Masked again here: a custom teacher's error may quote its request (a key) back.
        message = redact(str(err), getattr(getattr(teacher, "client", None), "_secrets", ()))
        logger.warning("No answer for passage %s: %s", passage["id"], message)
        bar.write(f"no answer for {passage['id']}: {message}")
        if failures >= max_failures and stats.stopped is None:
            stats.stopped = f"{failures} failures in a row; last: {message}"
        return failures
    # What is stored is what is read: at most MAX_ANSWER_CHARS characters, lone surrogates replaced.
    kept = clean_answer(answer)
    parsed = parse_tuples(kept)
    stats.unparsed += not parsed.ok
    record: Dict[str, Any] = {
        "id": passage["id"],
        "teacher": teacher.name,
        "prompt": prompt,
        "text": passage["text"],
        "answer": kept,
        "entities": [list(pair) for pair in parsed.pairs],
        "parse": parsed.method,
    }
    if len(answer) > len(kept):  # a runaway answer (the teacher ignored max_tokens): say how long it was
        record["answer_chars"] = len(answer)
        logger.warning(
            "The answer for passage %s had %d characters; the first %d were kept.",
            passage["id"],
            len(answer),
            len(kept),
        )
    log.append(record)
    stats.answered += 1
    bar.update(1)
    return 0
