"""Splitting Docs into passages UniNER can read.

UniNER was trained on passages of at most 256 LLaMA tokens, so long Docs are split: whole
sentences are packed into chunks where the Doc has sentence boundaries, otherwise windows of
tokens with an overlap (entities cut by one window are seen whole by the next). Model tokens
are counted with the backend's tokenizer, but a cheap bound comes first: no tokenizer makes more
tokens than UTF-8 bytes (+2 for BOS and a prefix space), so a short Doc is one chunk and a run
whose prompts are all cached loads no model files at all.
"""

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

from spacy.tokens import Doc

TokenCounter = Callable[[Sequence[str]], List[int]]


@dataclass(frozen=True)
class Chunk:
    """A passage: tokens ``[start, end)`` of the Doc; ``text`` is what the model reads."""

    start: int
    end: int
    start_char: int
    end_char: int
    text: str


def _token_bound(text: str) -> int:
    return len(text.encode("utf8")) + 2


def _make_chunk(doc: Doc, start: int, end: int) -> Chunk:
    span = doc[start:end]
    return Chunk(start, end, span.start_char, span.end_char, span.text)


def _units(doc: Doc) -> List[tuple]:
    if doc.has_annotation("SENT_START"):
        return [(sent.start, sent.end) for sent in doc.sents]
    return []


def _windows(doc: Doc, start: int, end: int, costs: Sequence[int], max_tokens: int, overlap: int) -> List[tuple]:
    """Token windows over ``[start, end)`` whose summed costs fit ``max_tokens``, overlapping by ``overlap`` tokens."""
    windows = []
    i = start
    while i < end:
        total, j = 0, i
        while j < end and (j == i or total + costs[j - start] <= max_tokens):
            total += costs[j - start]
            j += 1
        windows.append((i, j))
        if j >= end:
            break
        i = max(j - overlap, i + 1)
    return windows


def split_doc(
    doc: Doc,
    max_tokens: int,
    count_tokens: TokenCounter,
    overlap: int = 32,
    known_whole: Optional[Callable[[str], bool]] = None,
) -> List[Chunk]:
    """Chunks covering every non-space token of ``doc``, each at most ``max_tokens`` model tokens.

    ``known_whole(text)`` lets a caller say, without a tokenizer, that the whole text was read
    as one passage before (the component asks its response cache), so it stays one chunk.
    """
    if not doc.text.strip():
        return []
    whole = _make_chunk(doc, 0, len(doc))
    if _token_bound(doc.text) <= max_tokens or (known_whole is not None and known_whole(whole.text)):
        return [whole]
    if count_tokens(([doc.text]))[0] <= max_tokens:
        return [_make_chunk(doc, 0, len(doc))]
    pieces: List[tuple] = []
    sentences = _units(doc)
    if sentences:
        sent_costs = count_tokens([doc[s:e].text for s, e in sentences])
        current: List[tuple] = []
        current_cost = 0
        for (s, e), cost in zip(sentences, sent_costs):
            if cost > max_tokens:
                if current:
                    pieces.append((current[0][0], current[-1][1]))
                    current, current_cost = [], 0
                pieces.extend(_split_windows(doc, s, e, max_tokens, count_tokens, overlap))
                continue
            # +1: joining sentences may add a space token.
            if current and current_cost + cost + 1 > max_tokens:
                pieces.append((current[0][0], current[-1][1]))
                current, current_cost = [], 0
            current.append((s, e))
            current_cost += cost + (1 if len(current) > 1 else 0)
        if current:
            pieces.append((current[0][0], current[-1][1]))
    else:
        pieces = _split_windows(doc, 0, len(doc), max_tokens, count_tokens, overlap)
    chunks = [_make_chunk(doc, s, e) for s, e in pieces]
    return [chunk for chunk in chunks if chunk.text.strip()]


def _split_windows(
    doc: Doc, start: int, end: int, max_tokens: int, count_tokens: TokenCounter, overlap: int
) -> List[tuple]:
    costs = count_tokens([doc[i].text_with_ws for i in range(start, end)])
    # Tokens counted one by one can be cheaper together, rarely dearer: check each window and halve if needed.
    result = []
    todo = _windows(doc, start, end, costs, max_tokens, overlap)
    while todo:
        s, e = todo.pop(0)
        if e - s > 1 and count_tokens([doc[s:e].text])[0] > max_tokens:
            middle = (s + e) // 2
            todo[:0] = [(s, middle), (max(middle - overlap // 2, s + 1), e)]
            continue
        result.append((s, e))
    return result
