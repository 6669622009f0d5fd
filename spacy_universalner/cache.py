"""A JSONL response cache: one ``{"model", "prompt", "response"}`` object per line.

It is consulted before the model (a run whose prompts are all cached never loads it) and appended
to after each batch with a flush and fsync, so a crash loses at most the batch in flight. A line
that cannot be read (the torn tail of a killed run, bytes that are not UTF-8, a field of the wrong
type) is skipped and counted, with one warning per file; no line can make the pipe fail; a torn last
line is dropped before the next append (:mod:`.jsonl`). The file is plain text so users can audit,
replay and share what a model said.
"""
import json
import warnings
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple, Union

from .jsonl import append_lines, encode_line, split_lines
from .types import BackendError


class CacheNotWritable(BackendError):
    """The cache file cannot be appended to. Raised before the backend is asked, where backend
    failures are reported (a :class:`BackendError`, so the CLI shows it as one); the message says
    what to change."""


class ResponseCache:
    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self._entries: Dict[Tuple[str, str], str] = {}
        self._loaded = False
        self._writable = False
        #: Lines of the file that could not be read when it was loaded.
        self.skipped_lines = 0

    def _load(self) -> None:
        if self._loaded:
            return
        if self.path.exists():
            data = self.path.read_bytes()  # bytes: a cut multi-byte character spoils one line, not the file
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as file_:
            append_lines(file_, lines)  # a torn last line left by a crash is dropped first, never glued to
