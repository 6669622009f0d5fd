"""Placing answer strings on tokens.

UniNER answers with strings, not offsets. Every occurrence of a string in its chunk becomes a
span; if an exact search finds nothing, a case-insensitive and then a whitespace-insensitive
search are tried. A match that cuts through tokens is snapped to token boundaries with spaCy's
``alignment_mode`` ("strict" drops it, "contract" shrinks it, "expand" grows it). With
``word_boundaries`` on, a match that cuts a token between two letters or digits is dropped
("Ford" is not found in the token "Fordham"), which keeps "expand" from inventing entities; a
match on token boundaries is always kept, so scripts written without spaces (Chinese, Japanese)
align wherever the tokenizer splits words.
"""

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import FrozenSet, Iterator, List, Optional, Tuple

from spacy.tokens import Doc

from .types import AlignmentMode, check_choice


@dataclass(frozen=True)
class AlignmentConfig:
    mode: AlignmentMode = "expand"
    word_boundaries: bool = True
    case_insensitive: bool = True
    whitespace_insensitive: bool = True

    def __post_init__(self) -> None:
        check_choice("alignment_mode", self.mode, AlignmentMode)


def _patterns(mention: str, config: AlignmentConfig) -> Iterator[re.Pattern]:
    yield re.compile(re.escape(mention))
    if config.case_insensitive:
        yield re.compile(re.escape(mention), re.IGNORECASE)
    if config.whitespace_insensitive:
        words = mention.split()
        if words:
            yield re.compile(r"\s*".join(re.escape(w) for w in words), re.IGNORECASE)


def _cuts_a_word(text: str, start: int, end: int) -> bool:
    """Whether a match that does not sit on token boundaries starts or ends between two letters/digits."""
    if start > 0 and text[start].isalnum() and text[start - 1].isalnum():
        return True
    return end < len(text) and text[end - 1].isalnum() and text[end].isalnum()


#: ASCII letters and digits that only ever match themselves or their ASCII other case, also with re.IGNORECASE
#: (i, k and s also match the dotted/dotless I, the Kelvin sign and the long s).
_PLAIN = frozenset("abcdefghjlmnopqrtuvwxyzABCDEFGHJLMNOPQRTUVWXYZ0123456789")


@lru_cache(maxsize=8)
def _characters(text: str, start: int, end: int) -> FrozenSet[str]:
    return frozenset(text[start:end])


def _absent(mention: str, passage: FrozenSet[str]) -> bool:
    """Whether a character of ``mention`` that every pattern must match is in no case in the passage."""
    return any(char not in passage and char.swapcase() not in passage for char in _PLAIN.intersection(mention))


def find_mention(
    doc: Doc,
    mention: str,
    start_char: int = 0,
    end_char: Optional[int] = None,
    config: AlignmentConfig = AlignmentConfig(),
    text: Optional[str] = None,
) -> List[Tuple[int, int]]:
    """Token offsets ``(start, end)`` of every occurrence of ``mention`` in ``doc.text[start_char:end_char]``.

    Returns ``[]`` when the string cannot be placed (a hallucination or a paraphrase). ``text``: ``doc.text``,
    when the caller has it (spaCy rebuilds it from the tokens on every read).
    """
    mention = mention.strip()
    if not mention:
        return []
    text = doc.text if text is None else text
    end_char = len(text) if end_char is None else end_char
    if len(mention) - sum(char.isspace() for char in mention) > end_char - start_char or _absent(
        mention, _characters(text, start_char, end_char)
    ):
        return []  # no pattern can match, so none is compiled (a runaway answer has thousands of strings)
    for pattern in _patterns(mention, config):
        spans: List[Tuple[int, int]] = []
        for match in pattern.finditer(text, start_char, end_char):
            if match.end() == match.start():
                continue
            span = doc.char_span(match.start(), match.end(), alignment_mode="strict")
            if span is None:
                if config.mode == "strict" or (
                    config.word_boundaries and _cuts_a_word(text, match.start(), match.end())
                ):
                    continue
                span = doc.char_span(match.start(), match.end(), alignment_mode=config.mode)
            if span is not None and len(span) > 0:
                offsets = (span.start, span.end)
                if offsets not in spans:
                    spans.append(offsets)
        if spans:
            return spans
    return []
