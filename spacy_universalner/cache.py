"""A JSONL response cache: one ``{"model", "prompt", "response"}`` object per line.

It is consulted before the model (a run whose prompts are all cached never loads it) and appended
to after each batch with a flush and fsync, so a crash loses at most the batch in flight. A
truncated or corrupt line (the tail of a killed run) is skipped on read. The file is plain text
so users can audit, replay and share what a model said.
"""
import json
import os
import warnings
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple, Union


class ResponseCache:
    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self._entries: Dict[Tuple[str, str], str] = {}
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if not self.path.exists():
            return
        skipped = 0
        with self.path.open("r", encoding="utf8") as file_:
            for line in file_:
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    key = (entry["model"], entry["prompt"])
                    response = entry["response"]
                except (ValueError, KeyError, TypeError):
                    skipped += 1
                    continue
                if isinstance(response, str):
                    self._entries[key] = response
        if skipped:
            warnings.warn(f"Skipped {skipped} unreadable line(s) in the response cache {self.path}.")

    def get(self, model: str, prompt: str) -> Optional[str]:
        self._load()
        return self._entries.get((model, prompt))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def add(self, model: str, items: Iterable[Tuple[str, str]]) -> None:
        """Append ``(prompt, response)`` pairs for ``model`` and make them durable."""
        self._load()
        lines = []
        for prompt, response in items:
            if self._entries.get((model, prompt)) == response:
                continue
            self._entries[(model, prompt)] = response
            lines.append(json.dumps({"model": model, "prompt": prompt, "response": response}, ensure_ascii=False))
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as file_:
            # Never glue a new entry onto a half-written line left by a crash.
            file_.seek(0, os.SEEK_END)
            if file_.tell() > 0:
                file_.seek(-1, os.SEEK_END)
                if file_.read(1) != b"\n":
                    file_.write(b"\n")
            file_.write(("\n".join(lines) + "\n").encode("utf8"))
            file_.flush()
            os.fsync(file_.fileno())
