"""The ``universal_ner`` pipeline component.

For each Doc: split into passages (:mod:`.chunking`), ask one UniNER question per (passage,
label) (:mod:`.prompt`), answer from the response cache or the backend (:mod:`.cache`,
:mod:`.backends`), read the answers (:mod:`.parsing`), place the strings on tokens
(:mod:`.alignment`) and write ``doc.ents`` and/or ``doc.spans``. Everything the model said is
kept on the Doc: ``doc._.uniner_responses`` (raw answers) and ``doc._.uniner_unaligned``
(strings that could not be placed, for auditing hallucinations).
"""

import copy
import inspect
import multiprocessing
import os
import pickle
import warnings
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Type, Union, cast

import srsly
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc
from spacy.training import Example

from . import backends, templates  # noqa: F401  (register the @uniner_backends and the template; no torch)
from .cache import ResponseCache
from .chunking import split_doc
from .doc_spans import DEFAULT_ANNOTATION, AnnotationSettings, annotate_doc
from .prompt import UniNERTemplate, normalize_labels
from .types import (
    AlignmentMode,
    AnnotateMode,
    Backend,
    BackendError,
    Fingerprinted,
    Generation,
    OverlapPolicy,
    PartialGenerations,
    Query,
    Tokenizing,
    check_backend,
)


class UniversalNER(Pipe):
    """Zero-shot NER for any entity types, by asking a UniNER model one question per type.

    The keyword defaults below are also the ``universal_ner`` factory's config defaults (:data:`DEFAULT_CONFIG`);
    those of the annotation settings are read from :data:`~.doc_spans.DEFAULT_ANNOTATION` (written once, in
    :class:`~.doc_spans.AnnotationSettings`), as the spacy-llm task's are.
    """

    def __init__(
        self,
        vocab,
        name: str = "universal_ner",
        *,
        labels: Union[Sequence[str], Dict[str, str]],
        model: Backend,
        template: Optional[UniNERTemplate] = None,
        max_new_tokens: int = 256,
        batch_size: int = 8,
        max_chunk_tokens: int = 256,
        chunk_overlap: int = 32,
        annotate: AnnotateMode = DEFAULT_ANNOTATION.annotate,
        spans_key: str = DEFAULT_ANNOTATION.spans_key,
        overlap_policy: OverlapPolicy = DEFAULT_ANNOTATION.overlap_policy,
        overwrite_ents: bool = DEFAULT_ANNOTATION.overwrite_ents,
        alignment_mode: AlignmentMode = DEFAULT_ANNOTATION.alignment.mode,
        word_boundaries: bool = DEFAULT_ANNOTATION.alignment.word_boundaries,
        lenient_parsing: bool = DEFAULT_ANNOTATION.lenient_parsing,
        cache: Optional[Union[str, Path]] = None,
        scorer: Optional[Callable] = None,
        threshold: Optional[float] = DEFAULT_ANNOTATION.threshold,
    ):
        for setting, value, minimum in (
            ("max_new_tokens", max_new_tokens, 1),
            ("batch_size", batch_size, 1),
            ("max_chunk_tokens", max_chunk_tokens, 8),
            ("chunk_overlap", chunk_overlap, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{setting} must be an integer >= {minimum}, got {value!r}.")
        if chunk_overlap * 2 > max_chunk_tokens:
            raise ValueError(
                f"chunk_overlap ({chunk_overlap}) must be at most half of max_chunk_tokens ({max_chunk_tokens}): "
                "each window moves on by the tokens it does not share, so a larger overlap multiplies the queries "
                "per Doc (up to one window per token)."
            )
        self.vocab = vocab
        self.name = name
        self.label_queries = normalize_labels(labels)
        self.model = model
        self.traits = check_backend(model)  # which optional protocols it keeps, read once
        self.template = template or UniNERTemplate()
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.max_chunk_tokens = max_chunk_tokens
        self.chunk_overlap = chunk_overlap
        #: How answers become spans (checked here; the labels are filled in per batch, as they may change).
        self.settings = AnnotationSettings.from_arguments(locals())
        self.cache = ResponseCache(cache) if cache else None
        self.scorer = scorer
        self._separator_checked = False
        self._checked_pid: Optional[int] = None
        self._cache_key: Optional[str] = None
        #: Called with the number of queries answered, after the cache look-up and after each model call
        #: (``evaluate`` moves its progress bar with it: a model call can take minutes).
        self.progress: Optional[Callable[[int], None]] = None

    @property
    def cache_key(self) -> str:
        """Whose answers the cache holds: the backend's ``cache_key`` (a local model's name plus a
        fingerprint of its weights) where it has one, else its ``name``."""
        if self._cache_key is None:
            model = self.model
            self._cache_key = cast(Fingerprinted, model).cache_key if self.traits.fingerprinted else model.name
        return self._cache_key

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity labels set on Docs (``label_queries`` maps each to the text asked)."""
        return tuple(self.label_queries)

    # -- spaCy API ----------------------------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc], batch_size=1))

    def pipe(self, stream: Iterable[Doc], *, batch_size: Optional[int] = None) -> Iterator[Doc]:
        if self._checked_pid != os.getpid():  # a forked worker inherits the parent's object: check per process
            self._checked_pid = os.getpid()
            if in_spacy_worker():
                prepare_worker(self.model)
        batch_size = batch_size or self.batch_size
        error_handler = self.get_error_handler()
        stream = iter(stream)
        while True:
            docs = list(islice(stream, batch_size))
            if not docs:
                return
            try:
                yield from self._process_batch(docs)
            except Exception as err:
                error_handler(self.name, self, docs, err)

    def initialize(
        self, get_examples: Optional[Callable[[], Iterable[Example]]] = None, *, nlp=None, labels=None
    ) -> None:
        """Nothing to train; ``labels`` (e.g. from ``[initialize.components]``) replaces the configured ones."""
        if labels is not None:
            self.label_queries = normalize_labels(labels)

    def add_label(self, label: str, query: Optional[str] = None) -> int:
        """Add ``label`` (asked as ``query``, default the label): 1 if it is new, 0 if the component had it (spaCy's
        contract). Either way the label is asked as ``query or label`` from now on."""
        had = set(self.label_queries)
        labels = dict(self.label_queries)
        labels[label] = query or label
        self.label_queries = normalize_labels(labels)
        return 0 if set(self.label_queries) == had else 1

    # -- the work -----------------------------------------------------------------------------
    def _count_tokens(self, texts: Sequence[str]) -> List[int]:
        if not self.traits.tokenizing:  # a backend without a tokenizer: fall back to whitespace words
            return [len(text.split()) for text in texts]
        return cast(Tokenizing, self.model).count_tokens(texts)

    def _answered_whole(self, text: str) -> bool:
        """Whether the cache answers every label for ``text`` as one passage (then no tokenizer is needed)."""
        if self.cache is None:
            return False
        return all(
            self.cache.get(self.cache_key, self.template.prompt(text, query)) is not None
            for query in self.label_queries.values()
        )

    def _process_batch(self, docs: List[Doc]) -> List[Doc]:
        chunks = [
            split_doc(doc, self.max_chunk_tokens, self._count_tokens, self.chunk_overlap, self._answered_whole)
            for doc in docs
        ]
        keys: List[Tuple[int, int, str]] = []  # (doc index, chunk index, label)
        queries: List[Query] = []
        for d, doc_chunks in enumerate(chunks):
            for c, chunk in enumerate(doc_chunks):
                for label, query_text in self.label_queries.items():
                    keys.append((d, c, label))
                    queries.append(self.template.query(chunk.text, query_text))
        try:
            generations = self._answer(queries)
        except PartialGenerations as err:
            failed = sorted({keys[i][0] for i, g in enumerate(err.generations) if g is None})
            kept = (
                f"the answers that arrived are in the response cache {self.cache.path}, so a rerun asks only the rest"
                if self.cache is not None
                else "set `cache` to keep the answers that arrive when some fail"
            )
            raise BackendError(
                f"{err} No answer for {len(failed)} of the {len(docs)} Docs of this batch (positions "
                f"{', '.join(map(str, failed[:10]))}{', ...' if len(failed) > 10 else ''}; the first starts "
                f"{docs[failed[0]].text[:60]!r}); {kept}."
            ) from err
        per_doc: List[list] = [[] for _ in docs]  # one pass: a batch can hold 1000 Docs x many labels
        for key, generation in zip(keys, generations):
            per_doc[key[0]].append((key, generation))
        settings = self.settings.with_labels(self.label_queries)
        for doc, doc_chunks, answers in zip(docs, chunks, per_doc):
            annotate_doc(doc, doc_chunks, [(c, label, g) for (_, c, label), g in answers], settings)
        return docs

    def _answer(self, queries: List[Query]) -> List[Generation]:
        """Generations for ``queries``: cached ones from the cache, the rest from the model (then cached).

        Every answer that arrives is cached, also when other queries of the same backend call fail for
        good; then, once every call was made, :class:`PartialGenerations` (``None`` where unanswered).
        """
        results: List[Optional[Generation]] = [None] * len(queries)
        todo: Dict[str, List[int]] = {}
        for i, query in enumerate(queries):
            cached = self.cache.get(self.cache_key, query.prompt) if self.cache is not None else None
            if cached is not None:
                results[i] = Generation(cached)
            else:
                todo.setdefault(query.prompt, []).append(i)
        self._report(len(queries) - sum(len(indices) for indices in todo.values()))
        partial: Optional[PartialGenerations] = None
        if todo:
            self._check_separator()
            if self.cache is not None:
                self.cache.check_writable()  # before the model is asked: its answers must not be lost
            groups = list(todo.values())
            # `batch_size` Docs' worth of queries per backend call; the cache is written after each call.
            step = self.batch_size * len(self.label_queries)
            for start in range(0, len(groups), step):
                batch = groups[start : start + step]
                unique = [queries[indices[0]] for indices in batch]
                generations: Sequence[Optional[Generation]]
                try:
                    generations = self.model(unique, max_new_tokens=self.max_new_tokens)
                except PartialGenerations as err:
                    generations, partial = err.generations, partial or err
                if self.cache is not None:
                    self.cache.add(
                        self.cache_key, [(q.prompt, g.text) for q, g in zip(unique, generations) if g is not None]
                    )
                for indices, generation in zip(batch, generations):
                    for i in indices:
                        results[i] = generation
                self._report(sum(len(indices) for indices, g in zip(batch, generations) if g is not None))
        if partial is not None:
            raise PartialGenerations(str(partial), results) from partial
        return results  # type: ignore[return-value]

    def _report(self, answered: int) -> None:
        if self.progress is not None and answered:
            self.progress(answered)

    def _check_separator(self) -> None:
        if self._separator_checked:
            return
        self._separator_checked = True
        eos = cast(Tokenizing, self.model).eos_text if self.traits.tokenizing else None
        if eos is not None and eos != self.template.separator:
            warnings.warn(
                f"The prompt template's turn separator {self.template.separator!r} is not the EOS text {eos!r} "
                f"of model {self.model.name!r}. Set `[components.{self.name}.template] separator = {eos!r}` "
                "if the model was trained with it."
            )

    def __reduce__(self):
        """For ``nlp.pipe(n_process=N)`` under the spawn/forkserver start methods (macOS, Python 3.14), which pickle
        the pipeline: a backend that cannot be pickled (a loaded span model) is refused in one clear line."""
        state = dict(self.__dict__)
        try:
            state["model"] = pickle.dumps(self.model)
        except Exception as err:
            raise TypeError(N_PROCESS_PICKLE.format(name=getattr(self.model, "name", "?"), err=err)) from None
        return _unpickle_component, (self.__class__, state)

    def __copy__(self) -> "UniversalNER":
        new = self.__class__.__new__(self.__class__)
        new.__dict__.update(self.__dict__)
        return new

    def __deepcopy__(self, memo: Dict[int, Any]) -> "UniversalNER":
        """Copies go around :meth:`__getstate__` (it pickles the backend, which a copy needs not)."""
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return new

    # -- serialization: settings and labels only, never weights --------------------------------
    def _state(self) -> Dict[str, Any]:
        return {"labels": self.label_queries}

    def _set_state(self, state: Dict[str, Any]) -> None:
        self.label_queries = normalize_labels(state["labels"])

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        return srsly.json_dumps(self._state()).encode("utf8")

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "UniversalNER":
        self._set_state(srsly.json_loads(bytes_data))
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg.json", self._state())

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "UniversalNER":
        self._set_state(srsly.read_json(Path(path) / "cfg.json"))
        return self


# -- nlp.pipe(n_process=N): spaCy's worker processes ----------------------------------------------
N_PROCESS_GPU = (
    "nlp.pipe(n_process=N) runs the pipeline in worker processes, and a GPU backend ({name!r} on {device}) "
    "does not belong there (CUDA does not survive a fork; N model copies would share one GPU). Use n_process=1 and "
    "raise batch_size, or the Ray engine (`extract --engine ray --gpus-per-actor 1`: one process per GPU)."
)


N_PROCESS_PICKLE = (
    "The universal_ner backend {name!r} cannot be pickled ({err}), as nlp.pipe(n_process=N) needs under the "
    "spawn/forkserver start methods: start the workers before the model is first used, use the fork start method "
    "(multiprocessing.set_start_method('fork'), Linux), or the Ray engine (each actor loads its own pipeline)."
)


def _unpickle_component(cls: Type["UniversalNER"], state: Dict[str, Any]) -> "UniversalNER":
    """The inverse of :meth:`UniversalNER.__reduce__`.

    The backend was pickled apart, so a failure is one clear error.
    """
    component = cls.__new__(cls)
    component.__dict__.update({**state, "model": pickle.loads(state["model"])})
    return component


def in_spacy_worker() -> bool:
    """Whether this process is one of the workers ``nlp.pipe(n_process=N)`` starts (fork or spawn alike)."""
    target = getattr(multiprocessing.current_process(), "_target", None)
    return (
        getattr(target, "__name__", None) == "_apply_pipes" and getattr(target, "__module__", None) == "spacy.language"
    )


def backend_device(backend: Backend) -> Optional[str]:
    """Where a local backend computes ("cpu", "cuda", "cuda:1"); None for one that computes elsewhere (a server)."""
    from .backends.vllm import VLLMBackend  # imports no vllm

    if isinstance(backend, VLLMBackend):
        return "cuda"
    device = getattr(backend, "device_name", None) or getattr(backend, "device", None)
    if not isinstance(device, str):
        return None
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def prepare_worker(backend: Backend) -> None:
    """Make a backend safe in an ``n_process`` worker before it computes anything: refuse a GPU, and give
    torch one thread. A forked child inherits torch's OpenMP pool in a state it cannot use (once the parent
    has run the model, a second thread blocks forever in the first layer norm); one thread per worker is
    also the right share, as ``n_process`` is the parallelism."""
    device = backend_device(backend)
    if device is None:
        return
    if not device.startswith("cpu"):
        raise BackendError(N_PROCESS_GPU.format(name=getattr(backend, "name", type(backend).__name__), device=device))
    import torch

    torch.set_num_threads(1)


#: The component's config: its registered blocks here, every other setting's default read from
#: :class:`UniversalNER`'s signature (written once, there; the annotation settings' defaults come into that
#: signature from :data:`~.doc_spans.DEFAULT_ANNOTATION`).
DEFAULT_CONFIG: Dict[str, Any] = {
    # The packaged span student: works offline on a CPU out of the box. The paper's model is one setting away:
    # {"@uniner_backends": "spacy_universalner.HuggingFace.v1", "name": "Universal-NER/UniNER-7B-type"}.
    "model": {"@uniner_backends": "spacy_universalner.GLiNER.v1", "name": "uniner-span"},
    "template": {"@uniner_templates": "spacy_universalner.UniNER.v1"},
    **{
        name: parameter.default
        for name, parameter in inspect.signature(UniversalNER.__init__).parameters.items()
        if parameter.kind is parameter.KEYWORD_ONLY
        and parameter.default is not parameter.empty
        and name not in ("template", "scorer")
    },
    "scorer": {"@scorers": "spacy.ner_scorer.v1"},
}


@Language.factory(
    "universal_ner",
    assigns=["doc.ents", "doc.spans"],
    default_config=DEFAULT_CONFIG,
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_universal_ner(
    nlp: Language,
    name: str,
    labels: Union[str, List[str], Dict[str, Any]],
    model: Backend,
    template: UniNERTemplate,
    max_new_tokens: int,
    batch_size: int,
    max_chunk_tokens: int,
    chunk_overlap: int,
    annotate: AnnotateMode,
    spans_key: str,
    overlap_policy: OverlapPolicy,
    overwrite_ents: bool,
    alignment_mode: AlignmentMode,
    word_boundaries: bool,
    lenient_parsing: bool,
    cache: Optional[str],
    scorer: Optional[Callable],
    threshold: Optional[float] = DEFAULT_ANNOTATION.threshold,
) -> UniversalNER:
    """The types here are what spaCy validates a config against (a ``Literal`` refuses any other value)."""
    settings = dict(locals())
    return UniversalNER(settings.pop("nlp").vocab, **settings)
