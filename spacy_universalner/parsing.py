"""Reading UniNER answers: the official rule first, then a documented lenient fallback.

The official rule (UniNER's evaluator) takes the first ``[...]`` at position 0 of the answer,
non-greedy and on one line, and ``json.loads`` it; anything else is an empty answer. The model
usually obeys it, but a truncated list, single quotes or chatter before the list would silently
drop every mention. :func:`parse_answer` therefore falls back, in this order, to:

1. the first ``[`` anywhere, up to the last ``]`` after it, as JSON (text before the list,
   a ``]`` inside a mention);
2. the same slice as a Python literal (single-quoted strings);
3. every complete quoted string after the first ``[`` (a list cut off by ``max_new_tokens``).

If the text after the last ``ASSISTANT:`` (the official post-processing) gives no mention, the
fallback also reads the whole response: a mention may itself contain "ASSISTANT:". An answer is read up
to :data:`MAX_ANSWER_CHARS` characters, with lone surrogates replaced (:func:`clean_answer`). Only a slice of
at most :data:`MAX_EVAL_CHARS` characters and :data:`MAX_EVAL_DEPTH` brackets deep is ever
evaluated (``json.loads``, ``ast.literal_eval``): answers come from shared caches, remote servers
and teachers, ``literal_eval`` costs about 500 times its input in memory, and deep nesting would
make the result depend on how deep the caller's stack is. Longer or deeper answers go straight to
step 3, which is linear.

The metric (:func:`official_items`) uses only the official rule, so scores stay comparable
with the paper; the lenient path only changes what the component puts on the Doc.
"""

import ast
import json
import re
import string
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Sequence, Tuple, TypeVar

T = TypeVar("T")

_OFFICIAL_LIST = re.compile(r"\[(.*?)\]")
#: A double- or single-quoted string on one line (backslash escapes allowed): group 1 or group 2 is its body.
QUOTED_STRING = r'"((?:[^"\\\n]|\\.)*)"|\'((?:[^\'\\\n]|\\.)*)\''
_QUOTED = re.compile(QUOTED_STRING)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)
_OPENERS = "[({"

#: The longest bracketed slice the lenient parsers evaluate. A UniNER answer is at most 256 tokens (about 1,500
#: characters) and a teacher's at most its ``max_tokens``; 20,000 characters take ~0.1 s and ~10 MB.
MAX_EVAL_CHARS = 20_000
#: The deepest bracket nesting evaluated: answers are lists of strings (depth 1) or of pairs (2).
MAX_EVAL_DEPTH = 20
#: The longest answer read, in characters: ten times a teacher's longest normal answer (1,024 tokens, about
#: 6,000 characters) and forty times UniNER's (256 tokens). Only a runaway (a server ignoring ``max_tokens``)
#: is longer; it is read up to here, like an answer cut by the token limit (a 10 MiB answer took 93 s and 2.5 GB).
MAX_ANSWER_CHARS = 65_536

_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_answer(text: str) -> str:
    """``text`` as an answer is read: cut to :data:`MAX_ANSWER_CHARS`, and every lone surrogate (a code point
    JSON can carry as ``"\\ud800"`` but UTF-8 cannot encode, so a Doc holding it cannot be saved) replaced by
    U+FFFD. Character offsets into the answer stay valid (one character for one)."""
    if len(text) > MAX_ANSWER_CHARS:
        text = text[:MAX_ANSWER_CHARS]
    return _SURROGATE.sub("\ufffd", text)


def evaluable(text: str, max_chars: Optional[int] = MAX_EVAL_CHARS) -> bool:
    """Whether ``text`` is small and shallow enough to evaluate, in time linear in its length.

    Brackets inside quoted strings are counted too, which can only refuse more (then the linear
    quoted-string fallback reads the answer). ``max_chars=None``: depth only (``json.loads`` is linear).
    """
    if max_chars is not None and len(text) > max_chars:
        return False
    if sum(text.count(opener) for opener in _OPENERS) <= MAX_EVAL_DEPTH:
        return True  # the common case, without a Python loop
    depth = 0
    for char in text:
        if char in _OPENERS:
            depth += 1
            if depth > MAX_EVAL_DEPTH:
                return False
        elif char in "])}":
            depth = max(0, depth - 1)
    return True


def evaluate_literal(text: str, loads: Callable[[str], Any], max_chars: Optional[int] = MAX_EVAL_CHARS) -> Any:
    """``loads(text)`` (``json.loads`` or ``ast.literal_eval``) on untrusted text; ``None`` if it is
    too long or too deep (:func:`evaluable`) or does not parse."""
    if not evaluable(text, max_chars):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # literal_eval warns about escapes such as "\<" in the text
            return loads(text)
    except Exception:  # noqa: BLE001 - untrusted text: any parser error means "not a literal"
        return None


def postprocess_response(response: str) -> str:
    """The official post-processing of a raw generation: the text after the last ``ASSISTANT:``, stripped."""
    return response.split("ASSISTANT:")[-1].strip()


def normalize_mention(text: str) -> str:
    """SQuAD-style normalisation used by UniNER's metric, in its order.

    Lowercase, delete ASCII punctuation, replace the articles a/an/the with a space, collapse whitespace.
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def official_items(answer: str) -> List[Any]:
    """UniNER's evaluation parser, behaviour for behaviour.

    Returns normalised, de-duplicated items (tuples for list items), or ``[]`` when anything fails,
    exactly as the official evaluator does, so that metrics agree with it to the last digit.
    """
    try:
        match = _OFFICIAL_LIST.match(answer)
        items = json.loads(match.group() if match else "[]")
        result: List[Any] = []
        for item in items:
            if isinstance(item, (list, tuple)):
                item = tuple(normalize_mention(element) for element in item)
            else:
                item = normalize_mention(item)
            if item not in result:
                result.append(item)
        return result
    except Exception:
        return []


@dataclass
class ParsedAnswer:
    """Mention strings read from one answer, and how they were read.

    ``method`` is "official", "lenient" or "failed"; "failed" means nothing list-like was found
    (an empty answer that the model did not write as ``[]``).
    """

    mentions: List[str] = field(default_factory=list)
    method: str = "official"


def _as_mentions(items: Any) -> Optional[List[str]]:
    if not isinstance(items, (list, tuple)):
        return None
    mentions: List[str] = []
    for item in items:
        if isinstance(item, str):
            mentions.append(item)
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            mentions.append(str(item))
        elif isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
            # A (mention, type) pair, as teachers sometimes write: keep the mention.
            mentions.append(item[0])
    return [m for m in mentions if m.strip()]


def parse_official(answer: str) -> Optional[List[str]]:
    """The official rule without normalisation: raw mention strings, or ``None`` if it fails."""
    match = _OFFICIAL_LIST.match(answer)
    if match is None:
        return None
    return _as_mentions(evaluate_literal(match.group(), json.loads, max_chars=None))


def first_reading(
    text: str, readers: Sequence[Tuple[str, Callable[[str], Any]]], accept: Callable[[Any], Optional[T]]
) -> Optional[Tuple[str, T]]:
    """The bracketed slice of ``text`` (first ``[`` to last ``]``) as read by the first of ``readers``
    (``(name, loads)``, e.g. ``json.loads``, ``ast.literal_eval``, within :func:`evaluable`'s bounds)
    whose value ``accept`` turns into a result: ``(name, result)``; None if there is no slice or none does."""
    start, end = text.find("["), text.rfind("]")
    if start < 0 or end <= start:
        return None
    candidate = text[start : end + 1]
    for name, loads in readers:
        result = accept(evaluate_literal(candidate, loads))
        if result is not None:
            return name, result
    return None


def _parse_lenient(answer: str) -> Optional[List[str]]:
    start = answer.find("[")
    if start < 0:
        return None
    end = answer.rfind("]")
    read = first_reading(answer, (("json", json.loads), ("literal", ast.literal_eval)), _as_mentions)
    if read is not None:
        return read[1]
    quoted = [m.group(1) if m.group(1) is not None else m.group(2) for m in _QUOTED.finditer(answer, start)]
    if quoted or end > start:
        mentions = []
        for raw in quoted:
            try:
                mentions.append(json.loads(f'"{raw}"'))
            except ValueError:
                mentions.append(raw)
        return [m for m in mentions if m.strip()]
    return None


def parse_answer(response: str, lenient: bool = True) -> ParsedAnswer:
    """Mention strings from a raw generation (read as :func:`clean_answer` leaves it). Never raises."""
    response = clean_answer(response)
    answer = postprocess_response(response)
    mentions = parse_official(answer)
    if mentions is not None:
        return ParsedAnswer(without_surrogates(mentions), "official")
    if lenient:
        mentions = _parse_lenient(answer)
        whole = response.strip()
        if not mentions and whole != answer:
            # "ASSISTANT:" inside a mention cut the answer short: the whole response may hold the list.
            mentions = _parse_lenient(whole) or mentions
        if mentions is not None:
            return ParsedAnswer(without_surrogates(mentions), "lenient")
    return ParsedAnswer([], "failed")


def without_surrogates(strings: List[str]) -> List[str]:
    """``strings`` with lone surrogates replaced by U+FFFD: a JSON escape such as ``"\\ud800"`` makes one when read."""
    return [_SURROGATE.sub("\ufffd", text) for text in strings]
