"""``sample``: raw text -> passages of at most N tokens, deduplicated, sampled with a seed.

The paper annotated passages of at most 256 LLaMA tokens; shorter passages keep teacher answers
complete and match what the student sees at inference (the component splits long Docs too).
Passages are whole sentences packed greedily (a sentence longer than the limit is cut at token
boundaries) and are exact substrings of their document, so offsets and gold look-ups stay valid.
"""

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Sequence, Tuple, Union

import srsly

Span = Tuple[int, int]
TEXT_SUFFIXES = (".txt", ".text", ".md")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


def load_token_spans(tokenizer: str) -> Callable[[str], List[Span]]:
    """A function giving the character span of each token; ``"whitespace"`` counts words."""
    if tokenizer == "whitespace":
        return lambda text: [m.span() for m in re.finditer(r"\S+", text)]
    from ..pretrained import load_tokenizer

    hf = load_tokenizer(tokenizer)

    def spans(text: str) -> List[Span]:
        encoded = hf(text, add_special_tokens=False, return_offsets_mapping=True)
        return [tuple(span) for span in encoded["offset_mapping"]]

    return spans


def iter_documents(path: Union[str, Path], text_field: str = "text") -> Iterator[str]:
    """Documents from a text file (one document), a JSONL file (one per line) or a folder of both."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES + JSONL_SUFFIXES)
        if not files:
            raise ValueError(f"No {'/'.join(TEXT_SUFFIXES + JSONL_SUFFIXES)} files under {path}")
    else:
        files = [path]
    for file_ in files:
        if file_.suffix.lower() in JSONL_SUFFIXES:
            with file_.open("r", encoding="utf8") as lines:
                for number, line in enumerate(lines, 1):
                    if not line.strip():
                        continue
                    record = json.loads(line)
                    text = record.get(text_field) if isinstance(record, dict) else None
                    if not isinstance(text, str):
                        raise ValueError(f"{file_}:{number} has no string field {text_field!r}")
                    yield text
        else:
            yield file_.read_text(encoding="utf8")


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


def sentence_spans(text: str) -> List[Span]:
    """Rough sentence spans: split after . ! ? followed by whitespace, and at blank lines."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if text[start : match.start()].strip():
            spans.append(_strip(text, start, match.start()))
        start = match.end()
    if text[start:].strip():
        spans.append(_strip(text, start, len(text)))
    return spans


def _strip(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_passages(text: str, token_spans: Callable[[str], List[Span]], max_tokens: int) -> List[str]:
    """Pack whole sentences into passages of at most ``max_tokens`` tokens (long sentences are cut)."""
    pieces: List[Tuple[Span, int]] = []
    for start, end in sentence_spans(text):
        tokens = token_spans(text[start:end])
        while len(tokens) > max_tokens:
            cut = _word_cut(text[start:end], tokens[:max_tokens])
            pieces.append(((start, start + cut), max_tokens))
            start, end = _strip(text, start + cut, end)
            tokens = token_spans(text[start:end])
        if tokens:
            pieces.append(((start, end), len(tokens)))
    passages: List[str] = []
    current: List[Tuple[Span, int]] = []
    for piece in pieces:
        if current and sum(n for _, n in current) + piece[1] > max_tokens:
            passages.append(_join(text, current, token_spans, max_tokens, passages))
            current = []
        current.append(piece)
    if current:
        passages.append(_join(text, current, token_spans, max_tokens, passages))
    return [p for p in passages if p]


def _word_cut(sentence: str, tokens: List[Span]) -> int:
    """Where to cut an over-long sentence: after the last token that ends a word, else after the last token."""
    for _, token_end in reversed(tokens):
        if token_end < len(sentence) and sentence[token_end].isspace():
            return token_end
    return tokens[-1][1]


def _join(text, current, token_spans, max_tokens, passages) -> str:
    # Token counts of a join can exceed the sum by a token or two at boundaries: re-check and shed.
    while True:
        passage = text[current[0][0][0] : current[-1][0][1]]
        if len(current) == 1 or len(token_spans(passage)) <= max_tokens:
            return passage
        head = current.pop(0)
        passages.append(text[head[0][0] : head[0][1]])


def passage_id(text: str) -> str:
    """A content hash, so the same passage keeps its id across reruns with other settings."""
    return "p" + hashlib.sha1(text.encode("utf8")).hexdigest()[:15]


@dataclass
class SampleStats:
    documents: int = 0
    passages: int = 0
    duplicates: int = 0
    written: int = 0
    extra: Dict[str, int] = field(default_factory=dict)


def sample_passages(
    documents: Iterable[str],
    token_spans: Callable[[str], List[Span]],
    *,
    n: int,
    max_tokens: int = 256,
    seed: int = 0,
) -> Tuple[List[Dict[str, str]], SampleStats]:
    """Split, deduplicate (whitespace-insensitive) and sample ``n`` passages, kept in corpus order."""
    stats = SampleStats()
    seen = set()
    unique: List[str] = []
    for document in documents:
        stats.documents += 1
        for passage in split_passages(document, token_spans, max_tokens):
            stats.passages += 1
            key = " ".join(passage.split())
            if key in seen:
                stats.duplicates += 1
                continue
            seen.add(key)
            unique.append(passage)
    chosen: Sequence[int] = range(len(unique))
    if n < len(unique):
        chosen = sorted(random.Random(seed).sample(range(len(unique)), n))
    records = [{"id": passage_id(unique[i]), "text": unique[i]} for i in chosen]
    stats.written = len(records)
    return records, stats


def run_sample(
    source: Union[str, Path],
    output: Union[str, Path],
    *,
    n: int,
    max_tokens: int = 256,
    tokenizer: str = "whitespace",
    text_field: str = "text",
    seed: int = 0,
) -> SampleStats:
    records, stats = sample_passages(
        iter_documents(source, text_field), load_token_spans(tokenizer), n=n, max_tokens=max_tokens, seed=seed
    )
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    srsly.write_jsonl(output, records)
    return stats
