"""Readers: benchmark files -> spaCy Docs with gold entities.

Every reader yields Docs whose gold mentions are in ``doc.spans[GOLD_KEY]`` (overlaps allowed)
and, where they do not overlap, in ``doc.ents``. Readers keep the file's own type names; a
benchmark definition renames them to UniNER's queries (see :mod:`.benchmarks`). UniNER's
conversation files carry gold *answer strings*, not offsets: those are kept verbatim in
``doc.user_data[ANSWERS_KEY]`` (``{type: raw gold answer}``) so the official metric sees exactly
the strings the official evaluator sees.

A malformed line raises :class:`ReaderError` naming the file and the line.
"""

import bisect
import json
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.util import filter_spans

from ..conversations import answer_list, read_conversation
from ..registry import uniner_readers

GOLD_KEY = "uniner_gold"
#: A sentence's id in its file, where the file has one (MultiCoNER's ``# id`` headers).
ID_KEY = "uniner_id"
ANSWERS_KEY = "uniner_gold_answers"
DOCSTART = "-DOCSTART-"

PathLike = Union[str, Path]
Reader = Callable[[Language], Iterator[Doc]]

_TAG = re.compile(r"^(?:O|([BIESLU])-(.+))$")


class ReaderError(ValueError):
    """A benchmark file that cannot be read; the message starts with ``path:line:``."""

    def __init__(self, path: PathLike, line: Optional[int], message: str):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


def set_gold(doc: Doc, spans: Iterable[Span]) -> Doc:
    """Store gold spans in ``doc.spans[GOLD_KEY]``, and in ``doc.ents`` when they do not overlap."""
    spans = sorted(spans, key=lambda s: (s.start, s.end, s.label_))
    doc.spans[GOLD_KEY] = spans
    if len(filter_spans(spans)) == len(spans):
        doc.ents = spans
    return doc


# --- CoNLL / BIO -----------------------------------------------------------------------------


def _tags_to_spans(tags: List[str]) -> List[Tuple[int, int, str]]:
    """BIO decoding that also reads IOB1 and BIOES: ``I-X`` after ``O`` or another type opens a span."""
    spans: List[Tuple[int, int, str]] = []
    current: Optional[Tuple[int, str]] = None  # the open span's start and label
    for i, tag in enumerate(tags + ["O"]):
        match = _TAG.match(tag)
        prefix, kind = (match.group(1), match.group(2)) if match and match.group(1) else (None, None)
        continues = prefix in ("I", "E", "L") and current is not None and kind == current[1]
        if current is not None and not continues:
            spans.append((current[0], i, current[1]))
            current = None
        if prefix is not None and kind is not None and not continues:  # the pattern gives both or neither
            current = (i, kind)
        if prefix in ("E", "L", "S", "U") and current is not None:
            spans.append((current[0], i + 1, current[1]))
            current = None
    return spans


def read_conll(
    nlp: Language,
    path: PathLike,
    columns: str = "token-tag",
    encoding: str = "utf8",
    *,
    tag_column: Optional[int] = None,
    comment_prefix: Optional[str] = None,
    drop_ids: Iterable[str] = (),
    skip_pattern: Optional[str] = None,
) -> Iterator[Doc]:
    """Whitespace-separated columns, one token a line, blank line between sentences.

    ``columns="token-tag"``: token first, tag last (extra middle columns such as CoNLL-2003's POS
    and chunk tags are ignored). ``"tag-token"``: tag first, token last (the MIT corpora).
    ``tag_column`` reads the tag from that column instead (0-based; StackOverflowNER's human label
    is column 1, its last column is a markdown tag). ``-DOCSTART-`` lines are skipped. The Doc's
    text is the tokens joined by single spaces, which is how UniNER's own test files spell the
    passages.

    Lines starting with ``comment_prefix`` are sentence headers, not tokens (MultiCoNER's
    ``# id <uuid>\tdomain=en``): the first word after the prefix is the next sentence's id, kept in
    ``doc.user_data[ID_KEY]``, and sentences whose id is in ``drop_ids`` are not read (the
    decontamination list in SOURCES.md). Sentences whose text ``skip_pattern`` matches
    (``re.search``) are not read either: StackOverflowNER's metadata and code placeholders.
    """
    if columns not in ("token-tag", "tag-token"):
        raise ValueError(f"columns must be 'token-tag' or 'tag-token', not {columns!r}")
    path = Path(path)
    drop = frozenset(drop_ids)
    skip = re.compile(skip_pattern) if skip_pattern else None
    words: List[str] = []
    tags: List[str] = []
    sentence_id: Optional[str] = None

    def flush() -> Iterator[Doc]:
        nonlocal sentence_id
        text = " ".join(words)
        if words and sentence_id not in drop and not (skip and skip.search(text)):
            doc = Doc(nlp.vocab, words=list(words), spaces=[True] * (len(words) - 1) + [False])
            if sentence_id is not None:
                doc.user_data[ID_KEY] = sentence_id
            set_gold(doc, [Span(doc, s, e, label=lab) for s, e, lab in _tags_to_spans(tags)])
            yield doc
        words.clear()
        tags.clear()
        sentence_id = None

    with path.open(encoding=encoding) as file_:
        for number, line in enumerate(file_, start=1):
            if comment_prefix and line.startswith(comment_prefix):
                yield from flush()
                header = line[len(comment_prefix) :].split()
                sentence_id = header[0] if header else None
                continue
            # Tab-separated files may have types with spaces ("B-field of study"); others split on any whitespace.
            fields = [f.strip() for f in line.rstrip("\n").split("\t")] if "\t" in line else line.split()
            fields = [f for f in fields if f]
            if not fields:
                yield from flush()
                continue
            if fields[0] == DOCSTART or (columns == "tag-token" and fields[-1] == DOCSTART):
                yield from flush()
                continue
            if len(fields) < 2 or (tag_column is not None and len(fields) <= tag_column):
                raise ReaderError(path, number, f"expected a token and a tag, got {line.rstrip()!r}")
            token, tag = (fields[0], fields[-1]) if columns == "token-tag" else (fields[-1], fields[0])
            if tag_column is not None:
                tag = fields[tag_column]
            if not _TAG.match(tag):
                raise ReaderError(path, number, f"{tag!r} is not a BIO tag (O, B-X, I-X, E-X, S-X)")
            words.append(token)
            tags.append(tag)
    yield from flush()


# --- JSON formats ----------------------------------------------------------------------------


def _load_json(path: Path, errors: str = "strict") -> Any:
    try:
        with path.open(encoding="utf8", errors=errors) as file_:
            return json.load(file_)
    except json.JSONDecodeError as err:
        raise ReaderError(path, err.lineno, f"invalid JSON: {err.msg}") from None


def _char_span(doc: Doc, start: int, end: int, label: str, where: Tuple[Path, Optional[int]]) -> Span:
    if not (0 <= start < end <= len(doc.text)):
        raise ReaderError(*where, f"span [{start}, {end}) is outside the text of length {len(doc.text)}")
    span = doc.char_span(start, end, label=label, alignment_mode="expand")
    if span is None:
        raise ReaderError(*where, f"span [{start}, {end}) covers no token")
    return span


def read_instructuie(nlp: Language, path: PathLike) -> Iterator[Doc]:
    """InstructUIE / GLiNER JSON: ``[{"sentence", "entities": [{"name", "type", "pos": [start, end]}]}]``.

    Offsets are character offsets into ``sentence``; a span that falls inside a token is widened to
    whole tokens. The record's index is reported as the "line" of an error.
    """
    path = Path(path)
    records = _load_json(path)
    if not isinstance(records, list):
        raise ReaderError(path, None, "expected a JSON list of records")
    for index, record in enumerate(records):
        where = (path, index)
        try:
            doc = nlp.make_doc(record["sentence"])
            spans = []
            for entity in record.get("entities", []):
                start, end = entity["pos"]
                span = _char_span(doc, int(start), int(end), str(entity["type"]), where)
                spans.append(span)
        except ReaderError:
            raise
        except (KeyError, TypeError, ValueError) as err:
            raise ReaderError(path, index, f"record {index} is malformed ({err!r})") from None
        yield set_gold(doc, spans)


def _align_mentions(doc: Doc, label: str, mentions: Iterable[str]) -> List[Span]:
    """Every token-aligned occurrence of each gold mention: an approximation, as the file has no offsets."""
    spans = []
    for mention in dict.fromkeys(m for m in mentions if isinstance(m, str) and m.strip()):
        for match in re.finditer(re.escape(mention), doc.text):
            span = doc.char_span(match.start(), match.end(), label=label)
            if span is not None:
                spans.append(span)
    return spans


def read_uniner_conversations(nlp: Language, path: PathLike) -> Iterator[Doc]:
    """UniNER conversation JSON (the official test files): one record per (passage, type).

    Consecutive records about the same passage become one Doc; a type asked twice starts a new
    Doc. The raw gold answers are kept in ``doc.user_data[ANSWERS_KEY]``; gold spans are every
    token-aligned occurrence of each gold string (offsets are not in the file).
    """
    path = Path(path)
    records = _load_json(path)
    if not isinstance(records, list):
        raise ReaderError(path, None, "expected a JSON list of conversations")
    text: Optional[str] = None
    answers: "OrderedDict[str, str]" = OrderedDict()

    def flush() -> Iterator[Doc]:
        if text is not None:
            doc = nlp.make_doc(text)
            doc.user_data[ANSWERS_KEY] = dict(answers)
            spans: List[Span] = []
            for label, answer in answers.items():
                spans.extend(_align_mentions(doc, label, answer_list(answer) or []))
            yield set_gold(doc, spans)

    for index, record in enumerate(records):
        try:
            passage, pairs = read_conversation(record)
            if not pairs:
                raise ValueError("expected 'Text: ...', a reply, then question/answer pairs")
        except ValueError as err:
            raise ReaderError(path, index, f"record {index} is malformed ({err})") from None
        if passage != text or any(label in answers for label, _ in pairs):
            yield from flush()
            text, answers = passage, OrderedDict()
        answers.update(pairs)
    yield from flush()


def read_jsonl(nlp: Language, path: PathLike) -> Iterator[Doc]:
    """JSONL with character spans, one Doc a line: ``{"text", "spans": [{"start", "end", "label"}]}``.

    ``entities`` may stand for ``spans``, and a span may be a ``[start, end, label]`` triple
    (spaCy's training format).
    """
    path = Path(path)
    with path.open(encoding="utf8") as file_:
        for number, line in enumerate(file_, start=1):
            if not line.strip():
                continue
            where = (path, number)
            try:
                record = json.loads(line)
                doc = nlp.make_doc(record["text"])
                spans = []
                for item in record.get("spans", record.get("entities", [])):
                    if isinstance(item, dict):
                        start, end, label = item["start"], item["end"], item["label"]
                    else:
                        start, end, label = item
                    spans.append(_char_span(doc, int(start), int(end), str(label), where))
            except ReaderError:
                raise
            except (KeyError, TypeError, ValueError) as err:
                raise ReaderError(path, number, f"malformed line ({err!r})") from None
            yield set_gold(doc, spans)


def read_docbin(nlp: Language, path: PathLike, spans_key: Optional[str] = None) -> Iterator[Doc]:
    """A spaCy DocBin (``.spacy``): gold from ``doc.spans[spans_key]`` if given, else ``doc.ents``."""
    path = Path(path)
    try:
        docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    except Exception as err:  # DocBin raises several kinds of errors for a bad file
        raise ReaderError(path, None, f"not a readable DocBin ({err!r})") from None
    for doc in docs:
        gold = list(doc.spans[spans_key]) if spans_key else list(doc.ents)
        yield set_gold(doc, gold)


def read_scirex(nlp: Language, path: PathLike, max_words: int = 0) -> Iterator[Doc]:
    """A folder of SciREX papers, one JSON file each (``words``, ``sentences`` as ``[start, end)`` word
    spans, ``ner`` as ``[start, end, type]``): one Doc per sentence, since a paper is thousands of words.

    ``max_words`` > 0 skips longer sentences (tables and equations flattened into one "sentence",
    up to 2,295 words). A mention that crosses a sentence end is dropped.
    """
    for source in sorted(Path(path).glob("*.json")):
        paper = _load_json(source)
        try:
            words: List[str] = paper["words"]
            sentences = [(int(start), int(end)) for start, end in paper["sentences"]]
            mentions = sorted((int(s), int(e), str(t)) for s, e, t in paper["ner"])
        except (KeyError, TypeError, ValueError) as err:
            raise ReaderError(source, None, f"not a SciREX paper ({err!r})") from None
        starts = [m[0] for m in mentions]
        for start, end in sentences:
            if end <= start or (max_words and end - start > max_words):
                continue
            doc = Doc(nlp.vocab, words=words[start:end], spaces=[True] * (end - start - 1) + [False])
            first, last = bisect.bisect_left(starts, start), bisect.bisect_left(starts, end)
            spans = [Span(doc, s - start, e - start, label=t) for s, e, t in mentions[first:last] if e <= end]
            yield set_gold(doc, spans)


def read_snips(nlp: Language, path: PathLike) -> Iterator[Doc]:
    """SNIPS NLU benchmark, one intent's file: ``{intent: [{"data": [{"text", "entity"?}, ...]}]}``.

    An utterance's text is its parts joined; a part with ``entity`` is a mention of that slot type.
    The files mix Latin-1 into UTF-8, so undecodable bytes become U+FFFD rather than failing.
    """
    path = Path(path)
    data = _load_json(path, errors="replace")
    if not isinstance(data, dict):
        raise ReaderError(path, None, "expected {intent: [utterances]}")
    for intent, utterances in data.items():
        for index, utterance in enumerate(utterances):
            where = (path, index)
            try:
                text, offsets = "", []
                for part in utterance["data"]:
                    piece = str(part["text"])
                    if "entity" in part and piece.strip():
                        lead = len(piece) - len(piece.lstrip())
                        start = len(text) + lead
                        offsets.append((start, start + len(piece.strip()), str(part["entity"])))
                    text += piece
            except (KeyError, TypeError) as err:
                raise ReaderError(path, index, f"utterance {index} of {intent!r} is malformed ({err!r})") from None
            lead = len(text) - len(text.lstrip())
            doc = nlp.make_doc(text.strip())
            yield set_gold(doc, [_char_span(doc, s - lead, e - lead, label, where) for s, e, label in offsets])


def read_slimer_sentences(nlp: Language, path: PathLike) -> Iterator[Doc]:
    """SLIMER's ``sentences_per_ne_type.json``: ``{type: [{"sentence", "target_words_in_it"}]}``.

    One Doc per sentence, labelled with its one type only: every token-aligned occurrence of each
    target word (the file has no offsets). Other entities in the sentence are unlabelled.
    """
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise ReaderError(path, None, "expected {type: [sentences]}")
    for label, items in data.items():
        for index, item in enumerate(items):
            try:
                doc = nlp.make_doc(item["sentence"])
                targets = list(item["target_words_in_it"])
            except (KeyError, TypeError) as err:
                raise ReaderError(path, index, f"sentence {index} of {label!r} is malformed ({err!r})") from None
            yield set_gold(doc, _align_mentions(doc, label, targets))


def holdout(reader: Reader, split: str = "train", every: int = 10) -> Reader:
    """Every ``every``-th Doc of ``reader`` (the 1st, the 11th, ...) is ``"dev"``, the others ``"train"``.

    A fixed dev split for sets that ship none (SNIPS, SciREX's train papers), disjoint from the
    train split by construction.
    """
    if split not in ("train", "dev"):
        raise ValueError(f"split must be 'train' or 'dev', not {split!r}")
    if every < 2:
        raise ValueError(f"every must be at least 2, not {every}")
    dev = split == "dev"
    return lambda nlp: (doc for index, doc in enumerate(reader(nlp)) if (index % every == 0) == dev)


# --- registered factories (for benchmark configs) --------------------------------------------


@uniner_readers("spacy_universalner.conll.v1")
def make_conll_reader(
    path: Union[str, List[str]],
    columns: str = "token-tag",
    tag_column: Optional[int] = None,
    comment_prefix: Optional[str] = None,
    drop_ids: Sequence[str] = (),
    skip_pattern: Optional[str] = None,
) -> Reader:
    """``path`` may list several files, read in order as one set (MultiCoNER II's train is split in two)."""
    paths = [path] if isinstance(path, str) else list(path)

    def read(nlp: Language) -> Iterator[Doc]:
        for p in paths:
            yield from read_conll(
                nlp,
                p,
                columns=columns,
                tag_column=tag_column,
                comment_prefix=comment_prefix,
                drop_ids=drop_ids,
                skip_pattern=skip_pattern,
            )

    return read


@uniner_readers("spacy_universalner.instructuie.v1")
def make_instructuie_reader(path: str) -> Reader:
    return lambda nlp: read_instructuie(nlp, path)


@uniner_readers("spacy_universalner.uniner_conversations.v1")
def make_uniner_conversations_reader(path: str) -> Reader:
    return lambda nlp: read_uniner_conversations(nlp, path)


@uniner_readers("spacy_universalner.jsonl.v1")
def make_jsonl_reader(path: str) -> Reader:
    return lambda nlp: read_jsonl(nlp, path)


@uniner_readers("spacy_universalner.docbin.v1")
def make_docbin_reader(path: str, spans_key: Optional[str] = None) -> Reader:
    return lambda nlp: read_docbin(nlp, path, spans_key=spans_key)


@uniner_readers("spacy_universalner.scirex.v1")
def make_scirex_reader(path: str, max_words: int = 0) -> Reader:
    return lambda nlp: read_scirex(nlp, path, max_words=max_words)


@uniner_readers("spacy_universalner.snips.v1")
def make_snips_reader(path: str) -> Reader:
    return lambda nlp: read_snips(nlp, path)


@uniner_readers("spacy_universalner.slimer_sentences.v1")
def make_slimer_sentences_reader(path: str) -> Reader:
    return lambda nlp: read_slimer_sentences(nlp, path)


@uniner_readers("spacy_universalner.holdout.v1")
def make_holdout_reader(reader: Reader, split: str = "train", every: int = 10) -> Reader:
    return holdout(reader, split=split, every=every)


def gold_answers(doc: Doc, labels: Iterable[str]) -> Dict[str, str]:
    """The gold answer string of each queried type: the file's own string where it had one, else
    the JSON list of the gold mentions of that type in document order."""
    stored = doc.user_data.get(ANSWERS_KEY)
    if stored is not None:
        return {label: stored[label] for label in labels if label in stored}
    spans = doc.spans[GOLD_KEY] if GOLD_KEY in doc.spans else doc.ents
    return {label: answer_from_spans(spans, label) for label in labels}


def answer_from_spans(spans: Iterable[Span], label: str) -> str:
    """A JSON list of the texts of ``label``'s spans in document order, as UniNER would answer."""
    ordered = sorted((s for s in spans if s.label_ == label), key=lambda s: (s.start, s.end))
    return json.dumps([s.text for s in ordered], ensure_ascii=False)
