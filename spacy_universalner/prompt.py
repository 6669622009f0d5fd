"""UniNER's conversation template: the one place where prompts are built.

Inference (the component, the spacy-llm task, the benchmarks) and training (the distillation
``build``/``train`` steps) all call :class:`UniNERTemplate`, so a student is trained on exactly
the strings it later sees. The default reproduces the official ``ie_as_qa`` template byte for byte:

    A virtual assistant answers questions from a user based on the provided text. USER: Text: {text}
    ASSISTANT: I've read this text.</s>USER: What describes {type} in the text? ASSISTANT:

(one line; wrapped here for reading).
"""

import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .types import Query

DEFAULT_SYSTEM = "A virtual assistant answers questions from a user based on the provided text."
DEFAULT_SEPARATOR = "</s>"
READ_REPLY = "I've read this text."
TEXT_PREFIX = "Text: "  # the first user turn of a conversation: "Text: {passage}"
_QUESTION = re.compile(r"^What describes (.+) in the text\?$", re.DOTALL)


def parse_question(question: str) -> Optional[str]:
    """The entity type a UniNER question asks about (the inverse of :meth:`UniNERTemplate.question`), or None."""
    match = _QUESTION.match(question.strip())
    return match.group(1) if match else None


_USER_TEXT = f" USER: {TEXT_PREFIX}"
_READ_TURN = f" ASSISTANT: {READ_REPLY}"
_QUESTION_TURN = "USER: What describes "


def read_query(prompt: str) -> Optional[Tuple[str, str]]:
    """``(passage, type)`` of a UniNER prompt (the inverse of :meth:`UniNERTemplate.prompt`), or None.

    Extractive backends answer from the passage and the type, not from the prompt string; the
    last question and the last "I've read this text." turn before it delimit them, whatever the
    template's system sentence and separator, and whatever the passage itself contains.
    """
    question_at = prompt.rfind(_QUESTION_TURN)
    text_at = prompt.find(_USER_TEXT)
    read_at = prompt.rfind(_READ_TURN, 0, question_at) if question_at >= 0 else -1
    if text_at < 0 or read_at < text_at or not prompt.rstrip().endswith("ASSISTANT:"):
        return None
    label = parse_question(prompt[question_at + len("USER: ") :].rstrip()[: -len("ASSISTANT:")].strip())
    if label is None:
        return None
    return prompt[text_at + len(_USER_TEXT) : read_at], label


@dataclass(frozen=True)
class UniNERTemplate:
    """Vicuna-style two-role template (FastChat ``ADD_COLON_TWO``: sep " ", sep2 = EOS text)."""

    separator: str = DEFAULT_SEPARATOR
    system: str = DEFAULT_SYSTEM

    def passage_prefix(self, text: str) -> str:
        """Everything up to where the label-specific question starts."""
        return f"{self.system} USER: {TEXT_PREFIX}{text} ASSISTANT: {READ_REPLY}{self.separator}"

    @staticmethod
    def question(label: str) -> str:
        # The type is inserted verbatim: UniNER is case-sensitive ("Restaurant Name").
        return f"What describes {label} in the text?"

    def query_suffix(self, label: str) -> str:
        return f"USER: {self.question(label)} ASSISTANT:"

    def query(self, text: str, label: str) -> Query:
        return Query(self.passage_prefix(text), self.query_suffix(label))

    def prompt(self, text: str, label: str) -> str:
        return self.query(text, label).prompt

    def training_segments(self, text: str, qa_pairs: Iterable[Tuple[str, str]]) -> List[Tuple[str, bool]]:
        """A whole training conversation as ``(piece, is_target)`` pieces.

        Targets are the assistant turns, each followed by the EOS text, as in UniNER's training
        (the "I've read this text." turn included). Concatenating the pieces gives the
        conversation string; the prompt of each question is a prefix of it.
        """
        pieces: List[Tuple[str, bool]] = [
            (f"{self.system} USER: {TEXT_PREFIX}{text} ASSISTANT:", False),
            (f" {READ_REPLY}{self.separator}", True),
        ]
        for label, answer in qa_pairs:
            pieces.append((self.query_suffix(label), False))
            pieces.append((f" {answer}{self.separator}", True))
        return pieces


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: The longest entity type asked: types are short names or, for definition-style models, a short
#: sentence. A longer one would crowd the passage out of the model's context.
MAX_QUERY_CHARS = 300


def normalize_labels(labels: Union[Sequence[str], Dict[str, str]]) -> Dict[str, str]:
    """``labels`` (a list, a comma-separated string or a dict label -> query) as an ordered dict label -> query text.

    Anything unusable is a clear error.
    """
    given = labels  # quoted back in errors: the user sees what was read
    if isinstance(labels, str):  # "person,organization", as spacy-llm's tasks accept
        labels = [label.strip() for label in labels.split(",") if label.strip()]
    if isinstance(labels, dict):
        pairs = list(labels.items())
    else:
        pairs = [(label, label) for label in labels]
    if not pairs:
        raise ValueError(
            f"`labels` is empty (got {given!r}): give the entity types to find, e.g. "
            '"person,organization" or ["person", "organization"].'
        )
    result: Dict[str, str] = {}
    seen_queries: Dict[str, str] = {}
    for label, query in pairs:
        for what, value in (("label", label), ("query", query)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"Empty or non-string entity {what} in `labels`: {value!r}.")
            if _CONTROL.search(value):
                raise ValueError(
                    f"The entity {what} {value!r} contains a newline or control character; UniNER prompts are one line."
                )
            if "${" in value:
                raise ValueError(
                    f'The entity {what} {value!r} contains "${{", which spaCy\'s config reads as a reference to '
                    f"another "
                    "setting: the pipeline could not be saved and loaded (spaCy writes it back unescaped). Spell the "
                    'type without "${" (e.g. "$ {").'
                )
        if len(query) > MAX_QUERY_CHARS:
            raise ValueError(
                f"The entity type {query[:60]!r}... is {len(query)} characters long, more than {MAX_QUERY_CHARS}: "
                'types are asked as short names ("person", "programming language"); shorten it.'
            )
        if label in result:
            raise ValueError(f"Duplicate label {label!r} in `labels` (got {given!r}): name each type once.")
        if query in seen_queries:
            raise ValueError(
                f"Labels {seen_queries[query]!r} and {label!r} ask the same query {query!r} (got {given!r})."
            )
        result[label] = query
        seen_queries[query] = label
    return result


def make_uniner_template(separator: str = DEFAULT_SEPARATOR, system: str = DEFAULT_SYSTEM) -> UniNERTemplate:
    """The official UniNER template; ``separator`` is the tokenizer's EOS text."""
    return UniNERTemplate(separator=separator, system=system)
