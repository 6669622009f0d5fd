"""Confidence of each mention, from the log-probabilities of the tokens the model generated.

A mention's score is the probability the model gave to writing it: ``exp`` of the summed
log-probabilities of the generated tokens that overlap the mention's characters in the answer,
its two quotes included (the closing quote is what says "the mention ends here"; a token that
also carries ``[`` or ``, `` counts whole, since the model chose it whole). It is a probability
of the string under greedy decoding, in ``(0, 1]``: short, obvious mentions score near 1,
mentions the model hesitated over score lower. Answers without log-probabilities (response-cache
hits, backends that give none) score ``None``: nothing is recomputed, so a cached run stays free.

Scores are stored where spaCy users look for them: ``doc.spans[key].attrs["scores"]`` (one per
span, in order, as spancat does) and ``span._.uniner_score`` (a getter reading
``doc.user_data``, because spaCy stores plain ``Span._`` values per character offsets only and
two labels on the same words must keep their own scores).
"""

import json
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span

from .types import Generation

USER_DATA_KEY = "uniner_scores"


def mention_scores(generation: Generation, mentions: Sequence[str]) -> List[Optional[float]]:
    """One score per mention (in the order the parser returned them), ``None`` where unknown."""
    logprobs, offsets = generation.token_logprobs, generation.token_offsets
    if not logprobs or not offsets or len(logprobs) != len(offsets):
        return [None] * len(mentions)
    text = generation.text
    scores: List[Optional[float]] = []
    cursor = 0
    for mention in mentions:
        span = _locate(text, mention, cursor)
        if span is None:
            scores.append(None)
            continue
        start, end = span
        cursor = end
        covered = [lp for lp, (a, b) in zip(logprobs, offsets) if a < end and b > start]
        scores.append(probability(covered))
    return scores


def logprob_value(value: Any) -> Optional[float]:
    """A token log-probability as a float <= 0, or None where it is not one (NaN, infinite, positive, an
    integer too large for a float, not a number). Values a hair above 0 (a server's rounding) read as 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    if not math.isfinite(number) or number > LOGPROB_ROUNDING:
        return None
    return min(number, 0.0)


#: How far above 0 a log-probability may be and still read as 0 (servers round; 1e-3 is a probability of 1.001).
LOGPROB_ROUNDING = 1e-3


def probability(logprobs: Sequence[float]) -> Optional[float]:
    """``exp`` of the summed log-probabilities, in [0, 1]; None if there are none or one is not a
    log-probability: a bad number from a server is no score, never a crash."""
    values = [logprob_value(value) for value in logprobs]
    if not values or any(value is None for value in values):
        return None
    return math.exp(sum(values))  # type: ignore[arg-type]  # the sum is <= 0: in [0, 1] (0.0 where it underflows)


def _locate(text: str, mention: str, cursor: int) -> Optional[Tuple[int, int]]:
    """Characters of the quoted mention in the answer: the next JSON-quoted occurrence, else the bare string."""
    for needle in (json.dumps(mention, ensure_ascii=False), f"'{mention}'", mention):
        for start_at in (cursor, 0):
            i = text.find(needle, start_at)
            if i >= 0:
                return i, i + len(needle)
    return None


def _key(start_char: int, end_char: int, label: str) -> str:
    return f"{start_char}:{end_char}:{label}"


def set_span_scores(doc: Doc, scores: Dict[Tuple[int, int, str], Optional[float]]) -> None:
    """Record scores by (start_char, end_char, label) for the ``Span._.uniner_score`` getter."""
    doc.user_data[USER_DATA_KEY] = {_key(*k): v for k, v in scores.items()}


def get_span_score(span: Span) -> Optional[float]:
    table = span.doc.user_data.get(USER_DATA_KEY) or {}
    return table.get(_key(span.start_char, span.end_char, span.label_))
