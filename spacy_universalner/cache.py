"""A JSONL response cache: one ``{"model", "prompt", "response"}`` object per line.

It is consulted before the model (a run whose prompts are all cached never loads it) and appended
to after each batch with a flush and fsync, so a crash loses at most the batch in flight. A line
that cannot be read (the torn tail of a killed run, bytes that are not UTF-8, a field of the wrong
type) is skipped and counted, with one warning per file; no line can make the pipe fail; a torn last
line is dropped before the next append (:mod:`.jsonl`). Appends hold an exclusive lock on the file and
reads a shared one (POSIX), so several processes can share one cache without losing an entry. The path
must be a regular file or a new one. The file is plain text so users can audit, replay and share what a
model said.
"""

import json
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterable, Iterator, Optional, Tuple, Union

from .jsonl import append_lines, encode_line, split_lines
from .types import BackendError


class CacheNotWritable(BackendError):
    """The cache file cannot be appended to. Raised before the backend is asked, where backend
    failures are reported (a :class:`BackendError`, so the CLI shows it as one); the message says
    what to change."""


class CachePathError(CacheNotWritable, ValueError):
    """The cache path is a folder or a device, not a file. A ``ValueError`` too: it is a bad setting."""


try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock (documented)
    fcntl = None  # type: ignore[assignment]


def check_cache_path(path: Path) -> None:
    """A clear error unless ``path`` is a regular file or a new path: a folder gave a raw IsADirectoryError,
    and ``/dev/zero`` was read until the memory ran out."""
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise CachePathError(
            f"The response cache {path} is {kind}: give the path of a JSONL file (a new one is created), "
            "or set `cache = null`."
        )


@contextmanager
def _locked(file_, exclusive: bool) -> Iterator[None]:
    """Hold a lock on the cache file (POSIX ``flock``): appends are exclusive, so a torn line being repaired is
    never another process's write in flight; reads share the lock, so they never see a write half done."""
    if fcntl is None:
        yield
        return
    fcntl.flock(file_.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    try:
        yield
    finally:
        fcntl.flock(file_.fileno(), fcntl.LOCK_UN)


def _read(path: Path) -> bytes:
    """The whole file, read under a shared lock."""
    with path.open("rb") as file_, _locked(file_, exclusive=False):
        return file_.read()


class ResponseCache:
    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        check_cache_path(self.path)
        self._entries: Dict[Tuple[str, str], str] = {}
        self._loaded = False
        self._writable = False
        #: Lines of the file that could not be read when it was loaded.
        self.skipped_lines = 0

    def _load(self) -> None:
        if self._loaded:
            return
        check_cache_path(self.path)
        if self.path.exists():
            data = _read(self.path)  # bytes: a cut multi-byte character spoils one line, not the file
            for _, raw, _ in split_lines(data):
                try:
                    entry = json.loads(raw.decode("utf8"))
                    model, prompt, response = entry["model"], entry["prompt"], entry["response"]
                except (ValueError, KeyError, TypeError, RecursionError):  # UnicodeDecodeError is a ValueError
                    self.skipped_lines += 1
                    continue
                if isinstance(model, str) and isinstance(prompt, str) and isinstance(response, str):
                    self._entries[(model, prompt)] = response
                else:
                    self.skipped_lines += 1
            if self.skipped_lines:
                warnings.warn(f"Skipped {self.skipped_lines} unreadable line(s) in the response cache {self.path}.")
        self._loaded = True  # only once the whole file is read: a failed read is retried, not half-kept

    def get(self, model: str, prompt: str) -> Optional[str]:
        self._load()
        return self._entries.get((model, prompt))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def check_writable(self) -> None:
        """Fail before the model is asked if answers could not be stored (they would be lost).

        Opens the file for appending (creating it and its folder, as :meth:`add` would); a cache that
        is only read, e.g. a shared file on a read-only disk that answers every prompt, never needs it.
        """
        if self._writable:
            return
        check_cache_path(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab"):
                pass
        except OSError as err:
            raise CacheNotWritable(
                f"The response cache {self.path} cannot be written ({err.strerror or err}), so the model's answers "
                "would be lost: give a writable path as `cache`, or set `cache = null`."
            ) from err
        self._writable = True

    def add(self, model: str, items: Iterable[Tuple[str, str]]) -> None:
        """Append ``(prompt, response)`` pairs for ``model`` and make them durable."""
        self._load()
        lines = []
        for prompt, response in items:
            if self._entries.get((model, prompt)) == response:
                continue
            self._entries[(model, prompt)] = response
            lines.append(encode_line({"model": model, "prompt": prompt, "response": response}))
        if not lines:
            return
        check_cache_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as file_, _locked(file_, exclusive=True):
            append_lines(file_, lines)  # a torn last line left by a crash is dropped first, never glued to
