"""The Pile-NER-type conversation format: the one reader and writer of UniNER's instruction data.

A record holds one passage and the questions asked about it::

    {"id": "...", "conversations": [
        {"from": "human", "value": "Text: <passage>"}, {"from": "gpt", "value": "I've read this text."},
        {"from": "human", "value": "What describes <type> in the text?"},
        {"from": "gpt", "value": "[\\"mention\\", ...]"},
        ...]}

An answer ``[]`` makes the type a negative. Files are a JSON list (the released Pile-NER-type file, UniNER's
test files, what ``build`` and ``gold`` write) or JSONL. ``build``, ``gold``, ``train``, ``train-span``,
``init-student`` and the benchmark reader all go through this module.
"""

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .jsonl import read_records
from .prompt import READ_REPLY, TEXT_PREFIX, UniNERTemplate, parse_question

Record = Dict[str, Any]
#: ``(type, raw answer)``: the answer as the assistant wrote it (a JSON list, normally).
Pair = Tuple[str, str]


def make_conversation(record_id: str, text: str, queries: Sequence[Tuple[str, Sequence[str]]]) -> Record:
    """A record asking ``text`` about each ``(type, mentions)`` of ``queries``, in order."""
    turns = [{"from": "human", "value": f"{TEXT_PREFIX}{text}"}, {"from": "gpt", "value": READ_REPLY}]
    for label, mentions in queries:
        turns.append({"from": "human", "value": UniNERTemplate.question(label)})
        turns.append({"from": "gpt", "value": json.dumps(list(mentions), ensure_ascii=False)})
    return {"id": record_id, "conversations": turns}


def read_conversation(record: Record, strict: bool = True) -> Tuple[str, List[Pair]]:
    """``(passage, [(type, raw answer), ...])`` of a record.

    ``strict``: a record that is not a passage followed by UniNER question/answer pairs is a
    ``ValueError``; otherwise turns that are not UniNER questions are skipped (as ``build`` reads
    third-party files).
    """
    try:
        turns = [turn["value"] for turn in record["conversations"]]
    except (KeyError, TypeError) as err:
        raise ValueError(f"expected a 'conversations' list of {{'from', 'value'}} turns ({err!r})") from None
    if strict and (len(turns) < 2 or len(turns) % 2 or not str(turns[0]).startswith(TEXT_PREFIX)):
        raise ValueError("expected 'Text: ...', a reply, then question/answer pairs")
    first = turns[0] if turns else ""
    text = first[len(TEXT_PREFIX) :] if first.startswith(TEXT_PREFIX) else first
    pairs: List[Pair] = []
    for question, answer in zip(turns[2::2], turns[3::2]):
        label = parse_question(question)
        if label is None:
            if strict:
                raise ValueError(f"not a UniNER question: {question!r:.100}")
            continue
        pairs.append((label, answer))
    return text, pairs


def answer_list(answer: str) -> Optional[List[Any]]:
    """A raw answer read as the JSON list it should be (``[]``: a negative type); None if it is not one."""
    try:
        items = json.loads(answer)
    except ValueError:
        return None
    return items if isinstance(items, list) else None


def load_conversations(path: Union[str, Path]) -> List[Record]:
    """Every record of a conversation file (a JSON list, or JSONL)."""
    return list(read_records(path))


def write_conversations(path: Union[str, Path], records: Sequence[Record]) -> None:
    """Write records as one compact JSON list in UTF-8 (the released Pile-NER-type file's format), creating folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(records), ensure_ascii=False), encoding="utf8")
