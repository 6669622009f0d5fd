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
from typing import Any, List, Optional, Tuple

from ..parsing import QUOTED_STRING, clean_answer, evaluate_literal, first_reading, without_surrogates

Pair = Tuple[str, str]

_PAIR = re.compile(r"[\(\[]\s*(?:" + QUOTED_STRING + r")\s*,\s*(?:" + QUOTED_STRING + r")\s*[\)\]]")


@dataclass
class ParsedTuples:
    """Pairs read from one answer; ``method`` is literal, json, regex or failed; ``bad_items`` were skipped."""

    pairs: List[Pair] = field(default_factory=list)
    method: str = "failed"
    bad_items: int = 0

    @property
    def ok(self) -> bool:
        return self.method != "failed"


def _pairs(value: Any) -> Optional[Tuple[List[Pair], int]]:
    """``(pairs, items skipped)`` of an evaluated answer; None if it is not a list of pairs."""
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
        value = [value]  # a single tuple written without the list
    if not isinstance(value, (list, tuple)):
        return None
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
    """Entity/type pairs from a raw teacher answer, read as :func:`~spacy_universalner.parsing.clean_answer`
    leaves it (at most ``MAX_ANSWER_CHARS`` characters, lone surrogates replaced). Never raises."""
    text = clean_answer(answer).strip()
    read = first_reading(text, (("literal", ast.literal_eval), ("json", json.loads)), _pairs)
    if read is not None:
        method, (pairs, bad) = read
        return ParsedTuples(_clean_pairs(pairs), method, bad)
    found = [(_unescape(m.group(1), m.group(2)), _unescape(m.group(3), m.group(4))) for m in _PAIR.finditer(text)]
    if found:
        return ParsedTuples(_clean_pairs(found), "regex")
    return ParsedTuples([], "failed")


def _clean_pairs(pairs: List[Pair]) -> List[Pair]:
    """Pairs with lone surrogates (from JSON escapes such as ``"\\ud800"``) replaced, so every record can be saved."""
    return [(mention, kind) for mention, kind in (without_surrogates(list(pair)) for pair in pairs)]
