"""The package's floor: the types every layer shares, and the contract of a generation backend.

A backend is a callable built from the ``@uniner_backends`` registry. It receives :class:`Query`
objects (passage prefix + label suffix; queries of the same chunk share the prefix, so a backend may
compute it once) and returns one :class:`Generation` per query, in order, decoded greedily. Backends
load their models lazily. Optional abilities are protocols too (:class:`Tokenizing`,
:class:`Fingerprinted`); :func:`check_backend` reads which ones a backend has, once, where the
component is built (as spacy-llm's ``ty.py`` validates a task and model once).

This module imports nothing from the package.
"""

import inspect
import warnings
from dataclasses import dataclass
from typing import Any, List, Literal, Optional, Protocol, Sequence, Tuple, get_args, runtime_checkable

#: Enumerated settings. As types in factory and registered-function signatures, spaCy's config validation
#: refuses any other value before anything is built; :func:`check_choice` does the same for Python callers.
AnnotateMode = Literal["ents", "spans", "both"]
OverlapPolicy = Literal["longest", "label_order"]
AlignmentMode = Literal["strict", "contract", "expand"]
Dtype = Literal["auto", "float32", "float16", "bfloat16"]
Engine = Literal["shared_prefix", "generate"]
FlatDecoding = Literal["greedy", "best_total"]


def choices(literal: Any) -> Tuple[str, ...]:
    """The values of an enumerated setting's ``Literal`` type."""
    return get_args(literal)


def check_choice(setting: str, value: Any, literal: Any) -> None:
    """A clear ``ValueError`` unless ``value`` is one of ``literal``'s values."""
    if value not in choices(literal):
        raise ValueError(f"{setting} must be one of {choices(literal)}, got {value!r}.")


@dataclass(frozen=True)
class Query:
    """One model query: a passage ``prefix`` shared by every label of a chunk, and a label ``suffix``.

    Backends may use the split to compute the passage once per chunk; ``prompt`` is what a
    plain backend sends, and what the response cache is keyed on.
    """

    prefix: str
    suffix: str

    @property
    def prompt(self) -> str:
        return self.prefix + self.suffix


@dataclass
class Generation:
    """A raw answer, and optionally the log-probability of each generated token (for confidences)."""

    text: str
    token_logprobs: Optional[List[float]] = None
    #: Character ``(start, end)`` of each generated token in ``text``, aligned with ``token_logprobs``.
    token_offsets: Optional[List[Tuple[int, int]]] = None


@runtime_checkable
class Backend(Protocol):
    #: The hub id, path or packaged name the user gave.
    name: str

    def __call__(self, queries: Sequence[Query], max_new_tokens: int = 256) -> List[Generation]:
        """One greedy answer per query, in order, at most ``max_new_tokens`` tokens, stopping at EOS."""
        ...


class Tokenizing(Protocol):
    """A backend that can count model tokens (which chunking of long Docs needs) and names its EOS text
    (which the template's turn separator should be)."""

    def count_tokens(self, texts: Sequence[str]) -> List[int]: ...

    @property
    def eos_text(self) -> Optional[str]: ...


class Fingerprinted(Protocol):
    """A backend whose answers the response cache files under more than its name (e.g. a weight fingerprint)."""

    @property
    def cache_key(self) -> str: ...


@dataclass(frozen=True)
class BackendTraits:
    """Which optional protocols a backend keeps."""

    tokenizing: bool
    fingerprinted: bool


def _has(obj: Any, attribute: str) -> bool:
    # Looked up statically: reading a property such as ``eos_text`` may load a tokenizer.
    try:
        inspect.getattr_static(obj, attribute)
    except AttributeError:
        return False
    return True


def check_backend(model: Any) -> BackendTraits:
    """Check that ``model`` keeps the :class:`Backend` contract, and read which optional protocols it keeps."""
    if not callable(model) or not _has(model, "name"):
        raise TypeError(
            f"The model of universal_ner must be a backend (a callable with a `name`, taking a list of Query and "
            f"returning one Generation each; see spacy_universalner.types.Backend), got {type(model).__name__}."
        )
    return BackendTraits(
        tokenizing=all(_has(model, attribute) for attribute in ("count_tokens", "eos_text")),
        fingerprinted=_has(model, "cache_key"),
    )


def renamed_setting(old: str, new: str, value: Any) -> Any:
    """``value``, given under a setting's old name: still accepted for now, with a warning naming the new one."""
    warnings.warn(
        f"The setting `{old}` is now `{new}`; `{old}` will stop working in a later release.",
        DeprecationWarning,
        stacklevel=3,
    )
    return value


class BackendError(RuntimeError):
    """A backend could not be loaded or run; the message says what to do about it."""


class PartialGenerations(BackendError):
    """Some queries of a call failed for good; ``generations`` holds the others' answers (``None`` where
    failed), so the caller can keep them (the component caches them before it reports the failure)."""

    def __init__(self, message: str, generations: List[Optional[Generation]]):
        super().__init__(message)
        self.generations = generations
