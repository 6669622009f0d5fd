"""``spacy_universalner.UniNER.v1``: UniNER's per-type questions as a spacy-llm task.

With ``[components.llm.task] @llm_tasks = "spacy_universalner.UniNER.v1"`` any spacy-llm model
(OpenAI and other REST models, spacy-llm's Hugging Face models, a user's own registered model,
or our backends through ``spacy_universalner.UniNERModel.v1``) is asked UniNER's questions, and its
answers are read and placed on tokens by :func:`~spacy_universalner.doc_spans.annotate_doc`, the
code the ``universal_ner`` pipe uses, so both components give the same spans for the same answers.

How prompts map onto spacy-llm's protocol. spacy-llm hands a model, per Doc, one prompt per
shard (a shard is a piece of a Doc that fits the model's context). UniNER asks one question per
(passage, label), so for each Doc this task yields the flat list of prompts
``[shard 0 x label 0, shard 0 x label 1, ..., shard 1 x label 0, ...]`` together with the shard
of each prompt (shard-major, label order), keeping spacy-llm's one-shard-per-prompt contract. Any
model that maps each prompt string to one answer string works unchanged. ``parse_responses``
joins the shards back into one Doc with the shard reducer, then annotates it with each shard as
the passage its answers are aligned in, exactly like the component's chunks.

Each prompt is the exact UniNER prompt string (one line, ``</s>`` between turns). Chat models get
it as their user message; that is the faithful setting for the paper's ChatGPT baseline, which
asked the same per-type question, and parsing strips anything up to a trailing ``ASSISTANT:``.
"""

import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union, cast

import srsly
from spacy import util
from spacy.language import Language
from spacy.scorer import Scorer as SpacyScorer
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example
from spacy_llm.registry import registry
from spacy_llm.tasks.util.sharding import make_shard_mapper
from spacy_llm.ty import ShardMapper, ShardReducer

from .. import templates  # noqa: F401  (registers the @uniner_templates template)
from ..chunking import Chunk
from ..doc_spans import DEFAULT_ANNOTATION, AnnotationSettings, annotate_doc
from ..prompt import UniNERTemplate, normalize_labels
from ..types import AlignmentMode, AnnotateMode, Generation, OverlapPolicy

LabelsType = Union[str, List[str], Dict[str, str]]


def reduce_shards(task: Any, shards: Iterable[Doc]) -> Doc:
    """Shards back into one Doc with the original text (no whitespace added between shards)."""
    return Doc.from_docs(list(shards), ensure_whitespace=False)


@registry.llm_misc("spacy_universalner.ShardReducer.v1")
def make_shard_reducer() -> ShardReducer:
    return reduce_shards


class UniNERTask:
    """Asks one UniNER question per (shard, label) and writes the answers as spans on each Doc."""

    def __init__(
        self,
        labels: LabelsType,
        template: UniNERTemplate,
        settings: AnnotationSettings,
        shard_mapper: ShardMapper,
        shard_reducer: ShardReducer,
        scorer: Optional[Callable[..., Dict[str, Any]]] = None,
    ):
        self._label_queries: Dict[str, str] = normalize_labels(labels) if labels else {}
        self._template = template
        self._settings = settings
        self._shard_mapper = shard_mapper
        self._shard_reducer = shard_reducer
        self._scorer = scorer

    # -- labels ---------------------------------------------------------------------------------
    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self._label_queries)

    @property
    def label_queries(self) -> Dict[str, str]:
        """Label -> the type name asked in the prompt."""
        return dict(self._label_queries)

    def add_label(self, label: str, label_definition: Optional[str] = None) -> int:
        """Add ``label``; ``label_definition`` is the type name to ask for it (default: the label itself)."""
        if label in self._label_queries:
            return 0
        self._label_queries = normalize_labels({**self._label_queries, label: label_definition or label})
        return 1

    def clear(self) -> None:
        self._label_queries = {}

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        nlp: Optional[Language] = None,
        labels: Optional[LabelsType] = None,
        **kwargs: Any,
    ) -> None:
        """Labels from ``[initialize.components.llm] labels``, else the configured ones, else the examples' ents."""
        if labels:
            self._label_queries = normalize_labels(labels)
        elif not self._label_queries and get_examples is not None:
            found: List[str] = []
            for example in get_examples():
                found.extend(ent.label_ for ent in example.reference.ents if ent.label_ not in found)
            if found:
                self._label_queries = normalize_labels(found)

    def _check_labels(self) -> None:
        if not self._label_queries:
            raise ValueError(
                "The spacy_universalner.UniNER.v1 task has no labels: set `labels` in [components.llm.task], "
                'e.g. labels = ["person", "organization"], or give them at initialization.'
            )

    # -- prompting ------------------------------------------------------------------------------
    @property
    def prompt_template(self) -> str:
        """What spacy-llm's cache checks: the prompt with placeholders, and the questions asked."""
        questions = json.dumps(self._label_queries, ensure_ascii=False)
        return f"{self._template.prompt('{text}', '{label}')}\nlabels: {questions}"

    @staticmethod
    def _passage(shard: Doc) -> str:
        # The text of the shard's tokens without trailing whitespace: the component's chunk text.
        return shard[:].text

    def _render_longest(self, shard: Doc, i_shard: int, i_doc: int, n_shards: int) -> str:
        """The longest prompt of a shard, which the shard mapper fits into the context."""
        query = max(self._label_queries.values(), key=len)
        return self._template.prompt(self._passage(shard), query)

    def generate_prompts(
        self, docs: Iterable[Doc], context_length: Optional[int] = None
    ) -> Iterable[Tuple[Iterable[str], Iterable[Doc]]]:
        """Per Doc: one prompt per (shard, label), shard-major, and the shard of each prompt.

        A Doc with no text gets no prompts, and itself as its only shard, so it comes back unchanged.
        """
        self._check_labels()
        for i_doc, doc in enumerate(docs):
            if not doc.text.strip():
                yield [], [doc]
                continue
            shards = (
                list(self._shard_mapper(doc, i_doc, context_length, self._render_longest))
                if context_length is not None
                else [doc]
            )
            prompts: List[str] = []
            prompt_shards: List[Doc] = []
            for shard in shards:
                passage = self._passage(shard)
                for query in self._label_queries.values():
                    prompts.append(self._template.prompt(passage, query))
                    prompt_shards.append(shard)
            yield prompts, prompt_shards

    def parse_responses(self, shards: Iterable[Iterable[Doc]], responses: Iterable[Iterable[str]]) -> Iterable[Doc]:
        """Join each Doc's shards, then read and align every answer within its shard."""
        labels = list(self._label_queries)
        for prompt_shards, doc_responses in zip(shards, responses):
            unique: List[Doc] = []
            for shard in prompt_shards:
                if not unique or shard is not unique[-1]:
                    unique.append(shard)
            texts = [text if isinstance(text, str) else str(text) for text in doc_responses]
            if len(texts) != len(unique) * len(labels) and texts:
                raise ValueError(
                    f"Expected {len(unique) * len(labels)} responses ({len(unique)} shard(s) x {len(labels)} "
                    f"label(s)) for a Doc, got {len(texts)}: the model must answer every prompt, in order."
                )
            doc = unique[0] if len(unique) == 1 else self._shard_reducer(self, unique)
            chunks = _shard_chunks(doc, unique)
            answers = [(i // len(labels), labels[i % len(labels)], Generation(text)) for i, text in enumerate(texts)]
            annotate_doc(doc, chunks, answers, self._annotation_settings())
            yield doc

    def _annotation_settings(self) -> AnnotationSettings:
        return self._settings.with_labels(self._label_queries)

    # -- scoring --------------------------------------------------------------------------------
    def scorer(self, examples: Iterable[Example]) -> Dict[str, Any]:
        """Entity P/R/F (``ents_*``), or span scores (``spans_<key>_*``) when only spans are written."""
        if self._scorer is not None:
            return self._scorer(examples)
        if self._settings.annotate == "spans":
            key = self._settings.spans_key
            return SpacyScorer.score_spans(
                examples, f"spans_{key}", getter=lambda doc, attr: doc.spans.get(key, []), allow_overlap=True
            )
        return get_ner_prf(examples)

    # -- serialization: the labels (they may come from initialization); settings come from the config --
    def _cfg(self) -> Dict[str, Any]:
        return {"labels": self._label_queries}

    def _set_cfg(self, cfg: Dict[str, Any]) -> None:
        labels = cfg.get("labels") or {}
        self._label_queries = normalize_labels(labels) if labels else {}

    def to_bytes(self, *, exclude: Tuple[str] = cast(Tuple[str], tuple())) -> bytes:
        return srsly.json_dumps(self._cfg()).encode("utf8")

    def from_bytes(self, bytes_data: bytes, *, exclude: Tuple[str] = cast(Tuple[str], tuple())) -> "UniNERTask":
        self._set_cfg(srsly.json_loads(bytes_data))
        return self

    def to_disk(self, path: Path, *, exclude: Tuple[str] = cast(Tuple[str], tuple())) -> None:
        path = util.ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg.json", self._cfg())

    def from_disk(self, path: Path, *, exclude: Tuple[str] = cast(Tuple[str], tuple())) -> "UniNERTask":
        self._set_cfg(srsly.read_json(util.ensure_path(path) / "cfg.json"))
        return self


def _shard_chunks(doc: Doc, shards: Sequence[Doc]) -> List[Chunk]:
    """Each shard's tokens in the joined Doc, as the passage its answers are aligned in."""
    if sum(len(shard) for shard in shards) != len(doc):
        raise ValueError("The shard reducer must return a Doc made of the shards' tokens, in order.")
    chunks, start = [], 0
    for shard in shards:
        span = doc[start : start + len(shard)]
        chunks.append(Chunk(span.start, span.end, span.start_char, span.end_char, span.text))
        start = span.end
    return chunks


@registry.llm_tasks("spacy_universalner.UniNER.v1")
def make_uniner_task(
    labels: LabelsType = [],
    template: Optional[UniNERTemplate] = None,
    annotate: AnnotateMode = DEFAULT_ANNOTATION.annotate,
    spans_key: str = DEFAULT_ANNOTATION.spans_key,
    overlap_policy: OverlapPolicy = DEFAULT_ANNOTATION.overlap_policy,
    overwrite_ents: bool = DEFAULT_ANNOTATION.overwrite_ents,
    alignment_mode: AlignmentMode = DEFAULT_ANNOTATION.alignment.mode,
    word_boundaries: bool = DEFAULT_ANNOTATION.alignment.word_boundaries,
    lenient_parsing: bool = DEFAULT_ANNOTATION.lenient_parsing,
    shard_mapper: Optional[ShardMapper] = None,
    shard_reducer: Optional[ShardReducer] = None,
    scorer: Optional[Callable[..., Dict[str, Any]]] = None,
) -> UniNERTask:
    """UniNER prompting for spacy-llm's ``llm`` component.

    labels: entity types to ask for: a list, a comma-separated string, or a dict label -> type name asked.
    template: a ``@uniner_templates`` block (default: the official UniNER prompt).
    annotate, spans_key, overlap_policy, overwrite_ents, alignment_mode, word_boundaries,
    lenient_parsing: as for the ``universal_ner`` component, with the same defaults (both read them from
    :data:`spacy_universalner.doc_spans.DEFAULT_ANNOTATION`).
    shard_mapper / shard_reducer: spacy-llm's sharding of Docs longer than the model's context
    (default: ``spacy.ShardMapper.v1``, and a reducer that keeps the Doc's text exactly).
    scorer: default entity P/R/F (span scores with ``annotate = "spans"``).
    """
    return UniNERTask(
        labels=labels,
        template=template or UniNERTemplate(),
        settings=AnnotationSettings.from_arguments(locals()),
        shard_mapper=shard_mapper or make_shard_mapper(),
        shard_reducer=shard_reducer or make_shard_reducer(),
        scorer=scorer,
    )
