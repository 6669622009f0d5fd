"""Reading the teacher's ``[("entity 1", "type of entity 1"), ...]`` answers, robustly.

ChatGPT mostly writes a valid Python list of tuples, but also JSON lists of lists, text around
the list, an unclosed list cut off by the token limit, or apostrophes inside single-quoted
strings. We try, in order: the bracketed slice as a Python literal, then as JSON, then a regex
for every complete ``("...", "...")`` pair. What cannot be read is reported, never guessed. The
slice is evaluated only within the component parser's bounds (:func:`~spacy_universalner.parsing.evaluable`):
a longer or deeper answer goes straight to the linear regex.
"""
import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any, List, Tuple

from ..parsing import evaluate_literal

Pair = Tuple[str, str]

_STRING = r'"((?:[^"\\\n]|\\.)*)"|\'((?:[^\'\\\n]|\\.)*)\''
_PAIR = re.compile(r"[\(\[]\s*(?:" + _STRING + r")\s*,\s*(?:" + _STRING + r")\s*[\)\]]")


@dataclass
class ParsedTuples:
    """Pairs read from one answer; ``method`` is literal, json, regex or failed; ``bad_items`` were skipped."""

    pairs: List[Pair] = field(default_factory=list)
    method: str = "failed"
    bad_items: int = 0

    @property
    def ok(self) -> bool:
        return self.method != "failed"


def _pairs(value: Any) -> Tuple[List[Pair], int]:
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
        value = [value]  # a single tuple written without the list
    if not isinstance(value, (list, tuple)):
        raise ValueError("not a list")
    pairs, bad = [], 0
    for item in value:
        if isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(v, str) for v in item):
            pairs.append((item[0], item[1]))
        else:
            bad += 1
    return pairs, bad


def _unescape(double: str, single: str) -> str:
    raw = double if double is not None else single
    if "\\" not in raw:
        return raw  # nothing to unescape (most strings): no parser call
    quote = '"' if double is not None else "'"
    value = evaluate_literal(quote + raw + quote, ast.literal_eval)
    return value if isinstance(value, str) else raw


def parse_tuples(answer: str) -> ParsedTuples:
    """Entity/type pairs from a raw teacher answer. Never raises."""
    text = answer.strip()
    start = text.find("[")
    end = text.rfind("]")
    if start >= 0 and end > start:
        candidate = text[start : end + 1]
        for method, loads in (("literal", ast.literal_eval), ("json", json.loads)):
            try:
                pairs, bad = _pairs(evaluate_literal(candidate, loads))
            except ValueError:  # not a list (or not evaluated)
                continue
            return ParsedTuples(pairs, method, bad)
    found = [(_unescape(m.group(1), m.group(2)), _unescape(m.group(3), m.group(4))) for m in _PAIR.finditer(text)]
    if found:
        return ParsedTuples(found, "regex")
    return ParsedTuples([], "failed")
