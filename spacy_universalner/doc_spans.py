"""Turning UniNER answers into spans on a Doc: the one place where this happens.

Both the ``universal_ner`` pipe and the spacy-llm task (:mod:`spacy_universalner.llm.task`) call
:func:`annotate_doc`, so a model gives the same ``doc.ents`` / ``doc.spans`` whichever component
asked it. Each answer is read with :func:`~.parsing.parse_answer`, each mention string is placed
on tokens within its passage with :func:`~.alignment.find_mention`, and what the model said is kept
on the Doc: ``doc._.uniner_responses`` (raw answers) and ``doc._.uniner_unaligned`` (strings that
could not be placed, for auditing hallucinations).
"""

from dataclasses import dataclass, replace
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from .alignment import AlignmentConfig, find_mention
from .chunking import Chunk
from .confidence import mention_scores, set_span_scores
from .extensions import install_extensions
from .parsing import clean_answer, parse_answer
from .types import AlignmentMode, AnnotateMode, Generation, OverlapPolicy, check_choice

#: One answer: (index of its chunk in the Doc's chunk list, label, the model's generation).
Answer = Tuple[int, str, Generation]

install_extensions()


@dataclass(frozen=True)
class AnnotationSettings:
    """How answers become spans. ``label_queries`` maps each label to the text asked, in label order.

    The defaults here (with :class:`~.alignment.AlignmentConfig`'s for ``alignment_mode`` and ``word_boundaries``)
    are the only ones: the ``universal_ner`` component, its factory's config and the spacy-llm task
    ``spacy_universalner.UniNER.v1`` read them from :data:`DEFAULT_ANNOTATION` (see :func:`annotation_defaults`).
    """

    label_queries: Dict[str, str]
    annotate: AnnotateMode = "both"
    spans_key: str = "uniner"
    overlap_policy: OverlapPolicy = "longest"
    overwrite_ents: bool = True
    alignment: AlignmentConfig = AlignmentConfig()
    lenient_parsing: bool = True
    #: Drop mentions whose confidence (:mod:`.confidence`) is below this; unscored mentions are kept.
    threshold: Optional[float] = None

    def __post_init__(self) -> None:
        check_choice("annotate", self.annotate, AnnotateMode)
        check_choice("overlap_policy", self.overlap_policy, OverlapPolicy)
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be a probability between 0 and 1, or null; got {self.threshold!r}.")

    def with_labels(self, label_queries: Dict[str, str]) -> "AnnotationSettings":
        """The same settings for the current labels (they change with initialize/add_label; nothing else does)."""
        return replace(self, label_queries=label_queries)

    @classmethod
    def from_options(
        cls,
        *,
        annotate: AnnotateMode,
        spans_key: str,
        overlap_policy: OverlapPolicy,
        overwrite_ents: bool,
        alignment_mode: AlignmentMode,
        word_boundaries: bool,
        lenient_parsing: bool,
        threshold: Optional[float] = None,
        label_queries: Optional[Dict[str, str]] = None,
    ) -> "AnnotationSettings":
        """The settings from their config names (:data:`ANNOTATION_OPTIONS`, and ``threshold``), checked."""
        return cls(
            label_queries=dict(label_queries or {}),
            annotate=annotate,
            spans_key=spans_key,
            overlap_policy=overlap_policy,
            overwrite_ents=overwrite_ents,
            alignment=AlignmentConfig(mode=alignment_mode, word_boundaries=word_boundaries),
            lenient_parsing=lenient_parsing,
            threshold=threshold,
        )

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> "AnnotationSettings":
        """The settings among a function's arguments (its ``locals()``), taken by config name: each of
        :data:`ANNOTATION_OPTIONS`, and ``threshold`` where the function has it; the other arguments are not
        settings and stay out. The one hand-over from the component and the spacy-llm task, whose signatures
        declare the settings (a config is checked against them), to these settings."""
        names = [*ANNOTATION_OPTIONS, *(["threshold"] if "threshold" in arguments else [])]
        return cls.from_options(**{name: arguments[name] for name in names})

    def options(self) -> Dict[str, Any]:
        """The settings under their config names (:data:`ANNOTATION_OPTIONS`, then ``threshold``)."""
        return {
            "annotate": self.annotate,
            "spans_key": self.spans_key,
            "overlap_policy": self.overlap_policy,
            "overwrite_ents": self.overwrite_ents,
            "alignment_mode": self.alignment.mode,
            "word_boundaries": self.alignment.word_boundaries,
            "lenient_parsing": self.lenient_parsing,
            "threshold": self.threshold,
        }


#: The settings with their defaults: the one place the component, its factory and the spacy-llm task read them from.
DEFAULT_ANNOTATION = AnnotationSettings(label_queries={})

#: The seven annotation settings that the ``universal_ner`` component and the spacy-llm task both take, by config
#: name (the component also takes ``threshold``).
ANNOTATION_OPTIONS = (
    "annotate",
    "spans_key",
    "overlap_policy",
    "overwrite_ents",
    "alignment_mode",
    "word_boundaries",
    "lenient_parsing",
)


def annotation_defaults(with_threshold: bool = True) -> Dict[str, Any]:
    """Config name -> default of each annotation setting, read from :data:`DEFAULT_ANNOTATION` (literal values, as a
    spaCy factory's ``default_config`` needs)."""
    defaults = DEFAULT_ANNOTATION.options()
    return defaults if with_threshold else {name: defaults[name] for name in ANNOTATION_OPTIONS}


def annotate_doc(doc: Doc, chunks: Sequence[Chunk], answers: Iterable[Answer], settings: AnnotationSettings) -> None:
    """Write the spans found in ``answers`` on ``doc`` (ents and/or a span group) and keep the raw answers."""
    responses: List[Dict[str, Any]] = []
    unaligned: List[Dict[str, Any]] = []
    doc_text = doc.text
    found: Dict[Tuple[int, int, str], Span] = {}
    scores: Dict[Tuple[int, int, str], Optional[float]] = {}
    for c, label, generation in answers:
        chunk = chunks[c]
        # What is read and kept is the answer as clean_answer leaves it (capped, no lone surrogate, so the Doc
        # can be saved); offsets into it stay valid for the confidences.
        text = clean_answer(generation.text)
        if text != generation.text:
            generation = replace(generation, text=text)
        responses.append({"label": label, "query": settings.label_queries[label], "chunk": c, "response": text})
        parsed = parse_answer(text, lenient=settings.lenient_parsing)
        kept: Dict[str, List[Optional[float]]] = {}  # mention -> scores of its copies; each string aligned once
        for mention, score in zip(parsed.mentions, mention_scores(generation, parsed.mentions)):
            if settings.threshold is not None and score is not None and score < settings.threshold:
                continue
            kept.setdefault(mention, []).append(score)
        for mention, copies in kept.items():
            offsets = find_mention(doc, mention, chunk.start_char, chunk.end_char, settings.alignment, doc_text)
            if not offsets:
                unaligned.extend({"label": label, "text": mention, "chunk": c} for _ in copies)
            for start, end in offsets:
                span = found.setdefault((start, end, label), Span(doc, start, end, label=label))
                key = (span.start_char, span.end_char, label)
                for score in copies:
                    best = scores.get(key)
                    if score is not None and (best is None or score > best):
                        scores[key] = score  # a span found twice (overlapping chunks) keeps its best score
                    else:
                        scores.setdefault(key, score)
    doc._.uniner_responses = responses
    doc._.uniner_unaligned = unaligned
    order = list(settings.label_queries)
    spans = sorted(found.values(), key=lambda s: (s.start, s.end, order.index(s.label_)))
    set_span_scores(doc, scores)
    if settings.annotate in ("spans", "both"):
        doc.spans[settings.spans_key] = spans
        doc.spans[settings.spans_key].attrs["scores"] = [
            scores.get((s.start_char, s.end_char, s.label_)) for s in spans
        ]
    if settings.annotate in ("ents", "both"):
        doc.ents = resolve_ents(doc, spans, settings)


def resolve_ents(doc: Doc, spans: List[Span], settings: AnnotationSettings) -> List[Span]:
    """Non-overlapping ents: the longest span wins, or the earliest label with ``overlap_policy="label_order"``.

    With ``overwrite_ents=False`` the Doc's existing ents always stay: spans overlapping one are set
    aside before the policy chooses among the rest (so a longer new span can neither replace an
    existing entity nor crowd out a new one that fits beside it).
    """
    existing: List[Span] = [] if settings.overwrite_ents else list(doc.ents)
    if existing:
        occupied = {i for ent in existing for i in range(ent.start, ent.end)}
        spans = [span for span in spans if occupied.isdisjoint(range(span.start, span.end))]
    if settings.overlap_policy == "label_order":
        order = list(settings.label_queries)
        spans = sorted(spans, key=lambda s: (order.index(s.label_), -(s.end - s.start), s.start))
        chosen: List[Span] = []
        taken: Set[int] = set()
        for span in spans:
            if not taken.intersection(range(span.start, span.end)):
                chosen.append(span)
                taken.update(range(span.start, span.end))
        ents = chosen
    else:
        ents = filter_spans(spans)
    return sorted(existing + ents, key=lambda s: s.start)
