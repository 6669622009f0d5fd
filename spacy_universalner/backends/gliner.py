"""Extractive backend: a span model of the GLiNER architecture answers UniNER queries.

The component asks one UniNER question per (passage, type); a span model scores every (span,
type) pair of a passage in one encoder pass. This backend reads the passage and the type back
from each prompt (:func:`~spacy_universalner.prompt.read_query`), runs each passage once with
all the types asked of it, and answers every query as UniNER would: a JSON list of the mention
strings of that type, in document order, each once. Parsing, alignment, the response cache,
``evaluate`` and spacy-llm therefore work unchanged. A mention's span score becomes its
confidence (``Span._.uniner_score``, ``SpanGroup.attrs["scores"]``): it is carried as the
"log-probability" of the one pseudo-token covering the quoted mention in the answer, which is
where :mod:`spacy_universalner.confidence` reads confidences from.

Passages are split into words by spaCy's tokenizer (the words ``train-span`` trains on), not by
the ``gliner`` library's regex, so a predicted span always sits on spaCy token boundaries.
Weights load lazily with the ``gliner`` library: the packaged ``uniner-span`` (int8 weights,
:mod:`spacy_universalner.span_weights`), any folder written by ``save_pretrained``, or a hub id
such as ``urchade/gliner_small-v2.1``.
"""

import bisect
import json
import math
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ..pretrained import cache_key, load_pretrained, resolve_model_name
from ..prompt import read_query
from ..registry import uniner_backends
from ..types import BackendError, Dtype, FlatDecoding, Generation, Query, check_choice, renamed_setting
from .fast_spans import factor_span_layer
from .hf import check_device

DEFAULT_SPAN_MODEL = "uniner-span"


class SpacyWords:
    """GLiNER's word splitter interface (``(word, start_char, end_char)`` per word) on spaCy's tokenizer."""

    def __init__(self, language: str = "en"):
        import spacy

        self.nlp = spacy.blank(language)

    def __call__(self, text: str) -> Iterator[Tuple[str, int, int]]:
        for token in self.nlp.make_doc(text):
            if not token.is_space:
                yield token.text, token.idx, token.idx + len(token.text)


def answer_generation(mentions: Sequence[Tuple[str, float]]) -> Generation:
    """A UniNER answer (JSON list) for ``(mention, score)`` pairs, each score on the tokens of its quoted string."""
    best: Dict[str, float] = {}
    for text, score in mentions:
        best[text] = max(score, best.get(text, 0.0))
    answer = "["
    logprobs: List[float] = []
    offsets: List[Tuple[int, int]] = []
    for i, (text, score) in enumerate(best.items()):
        if i:
            answer += ", "
        quoted = json.dumps(text, ensure_ascii=False)
        offsets.append((len(answer), len(answer) + len(quoted)))
        logprobs.append(math.log(max(score, 1e-12)))
        answer += quoted
    answer += "]"
    return Generation(answer, token_logprobs=logprobs, token_offsets=offsets)


class GLiNERBackend:
    """Answers UniNER queries with a GLiNER-architecture span model (one encoder pass per passage)."""

    def __init__(
        self,
        name: str = DEFAULT_SPAN_MODEL,
        device: str = "auto",
        threshold: Optional[float] = None,
        passages_per_batch: int = 32,
        flat_ner: bool = True,
        language: str = "en",
        factored_spans: bool = True,
        dtype: Dtype = "auto",
        model: Optional[Any] = None,
        flat_decoding: Optional[FlatDecoding] = None,
        trust_remote_code: bool = False,
    ):
        """``model``: a GLiNER model already in memory (then ``name`` only names it in the cache)."""
        check_device(device)
        check_choice("dtype", dtype, Dtype)
        settings = model_settings(name)  # read once: the threshold and dtype the folder recommends
        if threshold is None:
            threshold = settings.get("threshold", 0.5)
        if not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be a probability between 0 and 1 (exclusive), got {threshold!r}.")
        if not isinstance(passages_per_batch, int) or passages_per_batch < 1:
            raise ValueError(f"passages_per_batch must be an integer >= 1, got {passages_per_batch!r}.")
        if flat_decoding is None:
            flat_decoding = settings.get("flat_decoding", "greedy")
        check_choice("flat_decoding", flat_decoding, FlatDecoding)
        self.name = name
        self.device = device
        self.threshold = float(threshold)
        self.passages_per_batch = passages_per_batch
        self.flat_ner = flat_ner
        self.flat_decoding = flat_decoding
        self.language = language
        self.factored_spans = factored_spans
        self.dtype_name = dtype
        if not isinstance(trust_remote_code, bool):
            raise ValueError(f"trust_remote_code must be true or false, got {trust_remote_code!r}.")
        self.trust_remote_code = trust_remote_code
        self._recommended_dtype: Optional[str] = settings.get("dtype")
        self._dtype: Optional[str] = None
        self._model = model
        self._prepared = False
        self._words: Optional[SpacyWords] = None
        self._cache_key: Optional[str] = None

    @property
    def cache_key(self) -> str:
        """Name plus a fingerprint of local weights, and the decoding settings that change answers."""
        if self._cache_key is None:
            flat = ("" if self.flat_decoding == "greedy" else f",{self.flat_decoding}") if self.flat_ner else ",nested"
            dtype = "" if self.compute_dtype == "float32" else f",{self.compute_dtype}"
            self._cache_key = f"{cache_key(self.name)}[gliner:{self.threshold:g}{flat}{dtype}]"
        return self._cache_key

    @property
    def compute_dtype(self) -> str:
        """The dtype the encoder and span head compute in (see :func:`resolve_span_dtype`)."""
        if self._dtype is None:
            self._dtype = resolve_span_dtype(self.dtype_name, self._torch_device(), self._recommended_dtype)
        return self._dtype

    @property
    def eos_text(self) -> Optional[str]:
        return None  # no generation, so no turn separator to check

    @property
    def model(self):
        if not self._prepared:
            if self._model is None:
                self._model = load_span_model(self.name, self._torch_device(), self.trust_remote_code)
                if self.factored_spans:
                    factor_span_layer(self._model)
            if self.compute_dtype != "float32":
                import torch

                self._model.to(getattr(torch, self.compute_dtype))
            self._prepared = True
        return self._model

    def _torch_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def count_tokens(self, texts: Sequence[str]) -> List[int]:
        """What a passage costs the encoder (the type prompt comes on top), for chunking long Docs: its subword
        tokens as GLiNER reads them (word by word), and at least its number of words, since GLiNER also cuts
        a passage at ``max_len`` words (400 emoji are 400 words but, as one string, one unknown token)."""
        words = [[word for word, _, _ in self._splitter()(text)] for text in texts]
        tokenizer = self.model.data_processor.transformer_tokenizer
        if tokenizer is None or not texts:
            return [len(w) for w in words]
        counts = [
            len(ids) if w else 0
            for ids, w in zip(
                tokenizer([w or ["."] for w in words], is_split_into_words=True, add_special_tokens=False)["input_ids"],
                words,
            )
        ]
        return [max(count, len(w)) for count, w in zip(counts, words)]

    def _splitter(self) -> "SpacyWords":
        if self._words is None:
            self._words = SpacyWords(self.language)
        return self._words

    def __call__(self, queries: Sequence[Query], max_new_tokens: int = 256) -> List[Generation]:
        """One answer per query; ``max_new_tokens`` does not apply (answers are never cut)."""
        passages: Dict[str, List[str]] = {}  # passage -> types asked, in order
        asked: List[Tuple[str, str]] = []
        for query in queries:
            parsed = read_query(query.prompt)
            if parsed is None:
                raise BackendError(
                    f"{self.name!r} is a span model: it answers UniNER questions only, not {query.prompt[:80]!r}."
                )
            text, label = parsed
            labels = passages.setdefault(text, [])
            if label not in labels:
                check_span_label(label)
                labels.append(label)
            asked.append(parsed)
        found = self._predict(passages)
        return [answer_generation(found[text].get(label, [])) for text, label in asked]

    def _label_groups(self, passages: Dict[str, List[str]]) -> Dict[str, List[List[str]]]:
        """The types of each passage in groups that fit the encoder beside it (one group unless there are many
        types: 120 types used to push the passage out of the encoder's 512 tokens and give no entity at all)."""
        tokenizer = self.model.data_processor.transformer_tokenizer
        limit = getattr(tokenizer, "model_max_length", None)
        if tokenizer is None or not isinstance(limit, int) or limit > 100_000:
            limit = DEFAULT_ENCODER_TOKENS
        texts = list(passages)
        passage_tokens = dict(zip(texts, self.count_tokens(texts)))
        max_words = getattr(getattr(self.model, "config", None), "max_len", None)
        for text in texts:
            words = sum(1 for _ in self._splitter()(text))
            if isinstance(max_words, int) and words > max_words:  # GLiNER would cut it there without a word
                raise BackendError(
                    f"A passage of {words} words is longer than the {max_words} words {self.name!r} reads: "
                    "lower max_chunk_tokens."
                )
        labels = sorted({label for asked in passages.values() for label in asked})
        costs = {  # <<ENT>> and the type's own tokens
            label: 1 + (len(ids) if tokenizer is not None else len(label.split()))
            for label, ids in zip(
                labels,
                tokenizer(labels, add_special_tokens=False)["input_ids"]
                if tokenizer is not None and labels
                else [[] for _ in labels],
            )
        }
        groups: Dict[str, List[List[str]]] = {}
        for text, asked in passages.items():
            budget = limit - passage_tokens[text] - 3  # <<SEP>>, and the encoder's own two special tokens
            groups[text] = [[]]
            used = 0
            for label in asked:
                if costs[label] > budget:
                    raise BackendError(
                        f"A passage of {passage_tokens[text]} encoder tokens leaves no room for the type "
                        f"{label!r} in the "
                        f"encoder's {limit} tokens of {self.name!r}: lower max_chunk_tokens, or shorten the type."
                    )
                if used + costs[label] > budget:
                    groups[text].append([])
                    used = 0
                groups[text][-1].append(label)
                used += costs[label]
        return groups

    def _predict(self, passages: Dict[str, List[str]]) -> Dict[str, Dict[str, List[Tuple[str, float]]]]:
        """``{passage: {type: [(mention, score), ...] in document order}}``, longest passages batched together.

        A passage asked more types than fit the encoder beside it is read once per group of types
        (:meth:`_label_groups`); the groups' candidates are then decoded together, as one pass would (types
        are encoded together, so scores can differ slightly from a single pass that does not fit anyway)."""
        model = self.model
        if model.data_processor.words_splitter is not self._splitter():
            model.data_processor.words_splitter = self._splitter()
        groups = self._label_groups(passages)
        # (passage, types, candidates): a passage split over several passes keeps every candidate until merged
        jobs = [(text, group, len(groups[text]) > 1) for text in passages for group in groups[text]]
        jobs.sort(key=lambda job: len(job[0]), reverse=True)  # less padding per batch
        best_total = self.flat_ner and self.flat_decoding == "best_total"
        found: Dict[str, List[Dict[str, Any]]] = {text: [] for text in passages}
        for start in range(0, len(jobs), self.passages_per_batch):
            batch = jobs[start : start + self.passages_per_batch]
            for candidates in (False, True):
                members = [job for job in batch if job[2] is candidates]
                if not members:
                    continue
                texts, label_sets = [job[0] for job in members], [job[1] for job in members]
                shared = all(labels == label_sets[0] for labels in label_sets)
                every = best_total or candidates  # every candidate, for best_total_spans or the merge
                try:
                    predictions = model.inference(
                        texts,
                        label_sets[0] if shared else label_sets,
                        flat_ner=self.flat_ner and not every,
                        threshold=self.threshold,
                        batch_size=len(texts),
                        **({"multi_label": True} if every else {}),
                    )
                except RuntimeError as err:
                    if "out of memory" in str(err).lower():
                        raise BackendError(
                            f"Out of memory running {self.name!r} on {len(texts)} passages: lower the backend's "
                            f"passages_per_batch."
                        ) from err
                    raise
                for text, entities in zip(texts, predictions):
                    found[text].extend(entities)
        result: Dict[str, Dict[str, List[Tuple[str, float]]]] = {}
        for text, entities in found.items():
            if best_total:
                entities = best_total_spans(entities)
            elif self.flat_ner and len(groups[text]) > 1:
                entities = greedy_flat_spans(entities)
            result[text] = {}
            for entity in sorted(entities, key=lambda e: e["start"]):
                result[text].setdefault(entity["label"], []).append((entity["text"], float(entity["score"])))
        return result


#: The encoder length assumed when its tokenizer does not say (GLiNER's DeBERTa and BERT encoders take 512).
DEFAULT_ENCODER_TOKENS = 512
#: Text GLiNER's prompt is built from: a type holding it would be read as several types (Bill Gates -> location).
MARKER_TEXTS = ("<<ENT>>", "<<SEP>>", "[ENT]", "[SEP]")


def check_span_label(label: str) -> None:
    """Refuse a type holding GLiNER's marker text, which would shift every type after it."""
    for marker in MARKER_TEXTS:
        if marker in label:
            raise BackendError(
                f"The entity type {label!r} holds {marker!r}, the text a span model marks types with: it would be read "
                "as two types and shift the others. Ask with other words (labels can map to any query text, "
                'e.g. labels = {"PER": "person"}).'
            )


def greedy_flat_spans(entities: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """GLiNER's flat decoding over candidates from several passes: the best-scoring span first, then every
    span that overlaps no span already kept (one type per word)."""
    kept: List[Dict[str, Any]] = []
    for entity in sorted(entities, key=lambda e: -float(e["score"])):
        if all(entity["end"] <= other["start"] or other["end"] <= entity["start"] for other in kept):
            kept.append(entity)
    return kept


def best_total_spans(entities: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The non-overlapping mentions (one type each) with the largest total score.

    GLiNER's flat decoding is greedy: the best-scoring span wins and everything overlapping it goes, so
    "Microsoft in Albuquerque" (0.51) can beat "Microsoft" (0.46) plus "Albuquerque" (0.49). This picks the
    set of non-overlapping candidates whose scores add up to the most (weighted interval scheduling).
    """
    spans = sorted(entities, key=lambda e: (e["end"], e["start"]))
    ends = [e["end"] for e in spans]
    best: List[float] = [0.0]  # best[i]: the best total over the first i spans
    choice: List[bool] = []
    previous: List[int] = []
    for i, entity in enumerate(spans):
        j = bisect.bisect_right(ends, entity["start"], 0, i)  # spans ending at or before this one starts
        previous.append(j)
        take = best[j] + float(entity["score"])
        choice.append(take > best[i])
        best.append(max(take, best[i]))
    chosen, i = [], len(spans)
    while i > 0:
        if choice[i - 1]:
            chosen.append(spans[i - 1])
            i = previous[i - 1]
        else:
            i -= 1
    return chosen[::-1]


#: A model folder may recommend settings: its decision threshold (chosen on data it was trained on,
#: never on a test set), the dtype its published scores were measured in, and its flat decoding.
SETTINGS_FILE = "uniner_settings.json"


def model_settings(name: str) -> Dict[str, Any]:
    """What ``name``'s folder recommends in ``uniner_settings.json`` (``{}`` when it has none)."""
    settings = Path(resolve_model_name(name)).expanduser() / SETTINGS_FILE
    if settings.is_file():
        return dict(json.loads(settings.read_text(encoding="utf8")))
    return {}


def native_bfloat16(device: str) -> bool:
    """Whether ``device`` computes in bfloat16 natively (CUDA with bf16, or a CPU with AVX512-BF16/AMX)."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_span_dtype(dtype: str, device: str, recommended: Optional[str] = None) -> str:
    """The compute dtype for ``dtype`` on ``device``.

    ``"auto"`` takes the model folder's recommendation where the device runs it natively (the
    packaged uniner-span recommends bfloat16: its published scores were measured so, and its matmuls
    run several times faster on CPUs with AVX512-BF16), else float32. Half precision on a CPU
    without native support would be slower than float32, so "auto" never picks it there.
    """
    if dtype != "auto":
        return dtype
    if recommended in ("bfloat16", "float16") and native_bfloat16(device):
        return recommended if recommended == "bfloat16" or device.startswith("cuda") else "float32"
    return "float32"


class RemoteCodeRefused(BackendError):
    """A span model's files ask to run Python code shipped with them, and ``trust_remote_code`` is false."""


def remote_code_refused(name: str, where: str) -> RemoteCodeRefused:
    return RemoteCodeRefused(
        f"The span model {name!r} asks to run Python code shipped with its files ({where}), which is refused by "
        "default: set `trust_remote_code = true` in the span backend's config "
        "([components.universal_ner.model]) only if you trust where the model comes from."
    )


#: The config files a GLiNER folder (or the encoder folder its ``model_name`` names) is read from.
_CONFIG_NAMES = ("gliner_config.json", "config.json", "tokenizer_config.json")


def remote_code_in(folder: Path) -> Optional[str]:
    """Which config file of a local GLiNER folder asks for the model's own Python code (an ``auto_map``, which
    transformers follows because the ``gliner`` library passes ``trust_remote_code=True`` itself), or None."""
    folders = [folder, folder / "labels_tokenizer", folder / "decoder_tokenizer"]
    try:
        backbone = json.loads((folder / "gliner_config.json").read_text(encoding="utf8")).get("model_name")
    except (OSError, ValueError, AttributeError):
        backbone = None
    if isinstance(backbone, str) and backbone not in (".", "") and Path(backbone).expanduser().is_dir():
        folders.append(Path(backbone).expanduser())
    for where in folders:
        for config in (where / name for name in _CONFIG_NAMES):
            try:
                values = json.loads(config.read_text(encoding="utf8"))
            except (OSError, ValueError):
                continue
            if _has_key(values, "auto_map"):
                return f"an auto_map in {config}"
    return None


def _has_key(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(_has_key(v, key) for v in value.values())
    if isinstance(value, list):
        return any(_has_key(v, key) for v in value)
    return False


_guard = threading.local()


@contextmanager
def refusing_remote_code(name: str, trusted: bool):
    """While loading ``name``: transformers may import a model's own code only if ``trusted``.

    The ``gliner`` library asks transformers for ``trust_remote_code=True`` on its own, for local folders and
    hub ids alike; every import of a model's code goes through ``get_class_from_dynamic_module``, which is
    wrapped once (the wrapper does nothing outside this block, or when ``trusted``)."""
    _install_remote_code_guard()
    previous = getattr(_guard, "refuse", None)
    _guard.refuse = None if trusted else name
    try:
        yield
    finally:
        _guard.refuse = previous


def _install_remote_code_guard() -> None:
    import sys

    from transformers import dynamic_module_utils

    original = dynamic_module_utils.get_class_from_dynamic_module
    if getattr(original, "_uniner_guard", False):
        return

    def get_class_from_dynamic_module(class_reference: Any, repo: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(_guard, "refuse", None)
        if name is not None:
            raise remote_code_refused(name, f"{class_reference} from {repo}")
        return original(class_reference, repo, *args, **kwargs)

    get_class_from_dynamic_module._uniner_guard = True  # type: ignore[attr-defined]
    for module in list(sys.modules.values()):  # the modules that imported it by name (auto classes)
        names = getattr(module, "__dict__", {})  # not getattr: transformers' lazy modules import on every look-up
        if (
            str(names.get("__name__", "")).startswith("transformers")
            and names.get("get_class_from_dynamic_module") is original
        ):
            module.get_class_from_dynamic_module = get_class_from_dynamic_module  # type: ignore[attr-defined]


def _refusal_in(err: BaseException) -> Optional[RemoteCodeRefused]:
    while err is not None:
        if isinstance(err, RemoteCodeRefused):
            return err
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return None


def load_span_model(name: str, device: str = "cpu", trust_remote_code: bool = False):
    """A GLiNER model from a packaged name, a local folder or a hub id, in eval mode on ``device``.

    A model whose files ask to run their own Python code (an ``auto_map``) is refused unless ``trust_remote_code``.
    """
    from ..span_weights import INT8_WEIGHTS, load_int8_model

    folder = Path(resolve_model_name(name)).expanduser()
    if not trust_remote_code and folder.is_dir():
        where = remote_code_in(folder)
        if where:
            raise remote_code_refused(name, where)
    with refusing_remote_code(name, trust_remote_code), warnings.catch_warnings():
        # gliner passes huggingface_hub's deprecated `resume_download` on every load: not the user's to fix
        warnings.filterwarnings("ignore", message=".*resume_download.*")
        if (folder / INT8_WEIGHTS).is_file():
            try:
                model = load_int8_model(folder)
            except Exception as err:
                refused = _refusal_in(err)
                if refused is not None:
                    raise refused from None
                raise BackendError(f"Could not load the span model {name!r} from {folder}: {err}") from err
        else:
            from gliner import GLiNER

            def loader(source: str, local_files_only: bool = False, **kwargs: Any):
                if Path(source).expanduser().is_dir():  # gliner treats a relative folder as a hub id
                    return GLiNER.from_pretrained(
                        str(Path(source).expanduser().resolve()), local_files_only=True, **kwargs
                    )
                return GLiNER.from_pretrained(source, local_files_only=local_files_only, **kwargs)

            try:
                model = load_pretrained(loader, name, "span model (GLiNER)")
            except BackendError as err:
                refused = _refusal_in(err)
                if refused is not None:
                    raise refused from None
                raise span_model_hint(err) from err.__cause__
    model.to(device)
    model.eval()
    return model


def span_model_hint(err: BackendError) -> BackendError:
    """The shared loading error with its config example for this backend (it names the HuggingFace.v1 block,
    which cannot load a GLiNER model) and a span model's folder contents."""
    message = str(err).replace('"spacy_universalner.HuggingFace.v1"', '"spacy_universalner.GLiNER.v1"')
    message = message.replace("holding config.json and the weights", "holding gliner_config.json and the weights")
    return BackendError(message)


@uniner_backends("spacy_universalner.GLiNER.v1")
def make_gliner_backend(
    name: str = DEFAULT_SPAN_MODEL,
    device: str = "auto",
    threshold: Optional[float] = None,
    passages_per_batch: int = 32,
    flat_ner: bool = True,
    language: str = "en",
    factored_spans: bool = True,
    dtype: Dtype = "auto",
    flat_decoding: Optional[FlatDecoding] = None,
    batch_size: Optional[int] = None,
    trust_remote_code: bool = False,
) -> GLiNERBackend:
    """A span model (GLiNER architecture): ``name`` is a packaged model, a local folder or a hub id.

    ``threshold``: the span score above which a mention is kept (null: the model folder's
    recommendation in ``uniner_settings.json``, else 0.5). ``passages_per_batch``: passages per
    encoder pass (``batch_size``, its old name, still works with a warning). ``flat_ner``: one type per
    word across all types asked of a passage (GLiNER's default); false answers each type on its own (nested
    and overlapping mentions). ``language``: the spaCy tokenizer that splits passages into words.
    ``factored_spans``: compute span
    representations per word instead of per span (:mod:`.fast_spans`; same scores, faster).
    ``dtype``: "float32", "bfloat16", "float16", or "auto" (the folder's recommended dtype where the
    device runs it natively, else float32; see :func:`resolve_span_dtype`). ``flat_decoding``: how
    ``flat_ner`` picks among overlapping mentions: "greedy" (GLiNER's: the best-scoring span first),
    "best_total" (the set with the largest total score; see :func:`best_total_spans`), or null: the model
    folder's recommendation, else "greedy" (uniner-span recommends "greedy", chosen on dev splits; its model card
    has both scores).
    ``trust_remote_code``: let a model whose config names its own Python code (an ``auto_map``) run it; off by
    default, since the ``gliner`` library would otherwise run it unasked.
    """
    if batch_size is not None:
        passages_per_batch = renamed_setting("batch_size", "passages_per_batch", batch_size)
    return GLiNERBackend(
        name=name,
        device=device,
        threshold=threshold,
        passages_per_batch=passages_per_batch,
        flat_ner=flat_ner,
        language=language,
        factored_spans=factored_spans,
        dtype=dtype,
        flat_decoding=flat_decoding,
        trust_remote_code=trust_remote_code,
    )
