"""Run a spaCy pipeline over a benchmark and score it under UniNER's protocol.

Each gold passage is re-tokenised exactly as the gold Doc (so spans compare without alignment
loss) and passed through the pipeline. Then, per (passage, query type), the *prediction string*
is, in this order:

1. the model's raw response, when the ``universal_ner`` component left it in
   ``doc._.uniner_responses`` and the passage was one chunk. This is the paper's protocol bit for
   bit: a mention the model invented, which the component could not align to the text, still
   counts as a false positive;
2. otherwise, a JSON list of the texts of the predicted spans of that type (``doc.ents`` plus
   ``doc.spans[key]`` for the configured keys) in document order, after the label map.

The gold string is the file's own answer (UniNER conversation files) or the JSON list of the gold
mentions. Official F1, its partial-match variant and spaCy's strict span scores are reported.

:func:`evaluate_pipeline` is the whole of ``evaluate``: load a pipeline (a folder or a config), run it over
benchmarks (:func:`evaluate_benchmarks`, one :func:`evaluate_docs` each) and write the reports.
"""

import json
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example

from .benchmarks import Benchmark
from .metrics import Counts, partial_query_counts, per_type_counts, query_counts, span_scores
from .readers import ANSWERS_KEY, GOLD_KEY, answer_from_spans, gold_answers

if TYPE_CHECKING:  # imported where a pipeline is run
    from ..component import UniversalNER

EVAL_KEY = "uniner_eval"
UNINER_FACTORY = "universal_ner"


def uniner_pipes(nlp: Language) -> List[str]:
    """Names of the pipeline's ``universal_ner`` components."""
    return [name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory == UNINER_FACTORY]


def uniner_component(nlp: Language, name: str) -> "UniversalNER":
    """The ``universal_ner`` component ``name`` of the pipeline (one of :func:`uniner_pipes`)."""
    from ..component import UniversalNER

    pipe = nlp.get_pipe(name)
    if not isinstance(pipe, UniversalNER):
        raise TypeError(f"Pipe {name!r} was made by the {UNINER_FACTORY} factory but is a {type(pipe).__name__}.")
    return pipe


def pipeline_label_map(nlp: Language) -> Dict[str, str]:
    """Label -> query text declared by ``universal_ner`` components configured with a dict of labels."""
    mapping: Dict[str, str] = {}
    for name in uniner_pipes(nlp):
        # The live mapping (it may have been re-initialised with a benchmark's queries), else the config's.
        labels = getattr(nlp.get_pipe(name), "label_queries", None) or nlp.get_pipe_config(name).get("labels")
        if isinstance(labels, Mapping):
            mapping.update({str(k): str(v) for k, v in labels.items()})
    return mapping


def pipeline_spans_keys(nlp: Language) -> List[str]:
    keys = []
    for name in uniner_pipes(nlp):
        key = nlp.get_pipe_config(name).get("spans_key")
        if key:
            keys.append(str(key))
    return keys


def predicted_spans(
    doc: Doc, spans_keys: Sequence[str], label_map: Mapping[str, str], types: Iterable[str]
) -> List[Span]:
    """Predicted spans renamed to benchmark types; spans of other types are left out."""
    wanted = set(types)
    seen = set()
    result = []
    candidates = list(doc.ents)
    for key in spans_keys:
        if key in doc.spans:
            candidates.extend(doc.spans[key])
    for span in candidates:
        label = label_map.get(span.label_, span.label_)
        if label not in wanted or (span.start, span.end, label) in seen:
            continue
        seen.add((span.start, span.end, label))
        result.append(Span(doc, span.start, span.end, label=label))
    return sorted(result, key=lambda s: (s.start, s.end, s.label_))


def _responses(doc: Doc) -> Optional[List[Dict[str, Any]]]:
    """The component's raw responses, if it ran and the passage was a single chunk."""
    if not Doc.has_extension("uniner_responses"):
        return None
    responses = doc._.uniner_responses
    if not responses or len({r.get("chunk", 0) for r in responses}) > 1:
        return None
    return list(responses)


def predictions_for(
    doc: Doc, queries: Sequence[str], spans: Sequence[Span], label_map: Mapping[str, str]
) -> Dict[str, Tuple[str, str]]:
    """``query -> (prediction string, source)`` with source "response" or "spans"."""
    by_query: Dict[str, str] = {}
    for entry in _responses(doc) or []:
        query = entry.get("query") or label_map.get(entry.get("label", ""), entry.get("label", ""))
        by_query.setdefault(query, entry.get("response", ""))
    result = {}
    for query in queries:
        if query in by_query:
            result[query] = (by_query[query], "response")
        else:
            result[query] = (answer_from_spans(spans, query), "spans")
    return result


def _input_doc(nlp: Language, gold: Doc) -> Doc:
    return Doc(nlp.vocab, words=[t.text for t in gold], spaces=[bool(t.whitespace_) for t in gold])


@contextmanager
def progress_bar(nlp: Language, n_docs: int, desc: str, enabled: bool = True) -> Iterator[Callable[[], None]]:
    """A tqdm bar for one benchmark; yields the function to call after each scored passage.

    With ``universal_ner`` components the bar counts queries, moved by the component after each model
    call (every ``batch_size`` Docs, not every ``nlp.pipe`` batch), so it moves within minutes and its
    rate, hence the ETA, is that of the model. Other pipelines: one step per passage.
    """
    from tqdm import tqdm

    pipes = [uniner_component(nlp, pipe_name) for pipe_name in uniner_pipes(nlp)]
    if not pipes:
        with tqdm(total=n_docs, desc=desc, unit="passage", disable=not enabled) as bar:
            yield lambda: bar.update(1)
        return
    # One chunk per passage (benchmark passages are short); longer ones add queries, and the total grows.
    total = n_docs * sum(len(pipe.label_queries) for pipe in pipes)
    with tqdm(total=total, desc=desc, unit="query", disable=not enabled) as bar:

        def advance(answered: int) -> None:
            if bar.n + answered > bar.total:
                bar.total = bar.n + answered
            bar.update(answered)

        for pipe in pipes:
            pipe.progress = advance
        try:
            yield lambda: None
        finally:
            for pipe in pipes:
                pipe.progress = None


def evaluate_docs(
    nlp: Language,
    benchmark: Benchmark,
    golds: Sequence[Doc],
    label_map: Optional[Mapping[str, str]] = None,
    spans_keys: Sequence[str] = (),
    batch_size: int = 32,
    progress: bool = True,
) -> Dict[str, Any]:
    """Score ``nlp`` on gold Docs of ``benchmark``; returns the dataset's metrics dict."""
    mapping = {**pipeline_label_map(nlp), **(label_map or {})}
    keys = list(dict.fromkeys([*pipeline_spans_keys(nlp), *spans_keys]))
    rows: List[Tuple[str, str, str]] = []
    official, partial = Counts(), Counts()
    sources: Dict[str, int] = {"response": 0, "spans": 0}
    examples = []
    start = time.perf_counter()
    inputs = (_input_doc(nlp, gold) for gold in golds)
    predicted = nlp.pipe(inputs, batch_size=batch_size)
    with progress_bar(nlp, len(golds), benchmark.name, enabled=progress) as passage_done:
        for gold, doc in zip(golds, predicted):
            queries = benchmark.queries_for(gold)
            spans = predicted_spans(doc, keys, mapping, queries)
            answers = gold_answers(gold, queries)
            for query, (prediction, source) in predictions_for(doc, queries, spans, mapping).items():
                gold_answer = answers.get(query, "[]")
                rows.append((query, prediction, gold_answer))
                official += query_counts(prediction, gold_answer)
                partial += partial_query_counts(prediction, gold_answer)
                sources[source] += 1
            doc.spans[EVAL_KEY] = spans
            gold.spans[EVAL_KEY] = [s for s in gold.spans.get(GOLD_KEY, []) if s.label_ in set(queries)]
            examples.append(Example(doc, gold))
            passage_done()
    seconds = time.perf_counter() - start
    return {
        "title": benchmark.title,
        "n_docs": len(golds),
        "n_queries": len(rows),
        "uniner": official.as_dict(),
        "uniner_per_type": per_type_counts(rows),
        "partial": partial.as_dict(),
        "spans": span_scores(examples, EVAL_KEY),
        "gold_offsets": "aligned from answer strings" if any(ANSWERS_KEY in g.user_data for g in golds) else "file",
        "prediction_sources": sources,
        "seconds": round(seconds, 3),
        "docs_per_second": round(len(golds) / seconds, 2) if seconds > 0 else None,
    }


def parse_label_map(value: Optional[str]) -> Dict[str, str]:
    """``--label-map``: a JSON file path, or ``LABEL=type,LABEL=type``."""
    if not value:
        return {}
    if Path(value).is_file():
        with open(value, encoding="utf8") as file_:
            data = json.load(file_)
        if not isinstance(data, dict):
            raise ValueError(f"{value}: a label map must be a JSON object of label -> type")
        return {str(k): str(v) for k, v in data.items()}
    mapping = {}
    for item in value.split(","):
        if not item.strip():
            continue
        label, sep, target = item.partition("=")
        if not sep or not label.strip() or not target.strip():
            raise ValueError(f"Bad label map entry {item!r}: expected LABEL=type")
        mapping[label.strip()] = target.strip()
    return mapping


# -- a whole evaluation: pipeline, benchmarks, reports ------------------------------------------------------
def load_pipeline(pipeline: Path, overrides: Dict[str, Any]) -> Language:
    """A saved pipeline folder (``spacy.load``) or a ``.cfg`` (built from the config)."""
    import spacy
    from spacy import util

    if pipeline.is_dir():
        return spacy.load(pipeline, config=overrides)
    config = util.load_config(pipeline, overrides=overrides, interpolate=False)
    return util.load_model_from_config(config, auto_fill=True, validate=True)


def output_override(pipeline: Path, overrides: Dict[str, Any], output: Path) -> Dict[str, Any]:
    """``paths.output`` set to ``output`` where the pipeline's config declares that variable.

    configs/benchmarks_pipeline.cfg keeps its response cache at ``${paths.output}/responses.jsonl``, so
    the answers behind a results folder are kept in it, wherever ``--output`` points.
    """
    from spacy import util

    config_path = pipeline / "config.cfg" if pipeline.is_dir() else pipeline
    if "paths.output" in overrides or not config_path.is_file():
        return {}
    paths = util.load_config(config_path, interpolate=False).get("paths", {})
    return {"paths.output": str(output)} if "output" in paths else {}


#: Components whose config names the model that answers: (factory, keys to the name in its `model` block).
_MODEL_NAME_KEYS = {"universal_ner": ("name", "model"), "llm": ("name", "backend.name")}


def _model_names(nlp: Language) -> List[Tuple[str, str, str]]:
    """``(component, key, name)`` for each component whose ``model`` block names the model that answers."""
    found = []
    for pipe_name in nlp.pipe_names:
        keys = _MODEL_NAME_KEYS.get(nlp.get_pipe_meta(pipe_name).factory, ())
        model = nlp.get_pipe_config(pipe_name).get("model") or {}
        for key in keys:
            value: Any = model
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, str) and value:
                found.append((pipe_name, key, value))
                break
    return found


def model_option(nlp: Language) -> Optional[str]:
    """The config override that gives the pipeline's model as a local folder, for loading errors to suggest
    (``evaluate`` has no ``--model``): e.g. ``--components.universal_ner.model.name=./my-model``."""
    found = _model_names(nlp)
    return f"--components.{found[0][0]}.model.{found[0][1]}=./my-model" if found else None


def model_name(nlp: Language) -> Optional[str]:
    """The model that produced the pipeline's answers, for the results' row: the ``universal_ner`` backend's
    name (or a spacy-llm model's), else the name of a packaged pipeline (``en_core_web_sm``); None if neither."""
    names = [name for _, _, name in _model_names(nlp)]
    if names:
        return " + ".join(dict.fromkeys(names))
    if nlp.meta.get("name") and nlp.meta["name"] != "pipeline":
        return f"{nlp.meta.get('lang', 'xx')}_{nlp.meta['name']}"
    return None


def ask_benchmark_queries(nlp: Language, names: Sequence[str], queries: List[str]) -> None:
    """Make each ``universal_ner`` component ask exactly the benchmark's queries (no model reload)."""
    for name in names:
        uniner_component(nlp, name).initialize(labels=list(queries))


class MissingBenchmarkFile(FileNotFoundError):
    """A benchmark's data file is not there: ``benchmark`` names the benchmark, ``missing`` the file."""

    def __init__(self, benchmark: str, missing: Union[str, FileNotFoundError]):
        super().__init__(f"{benchmark}: benchmark file not found ({missing})")
        self.benchmark = benchmark
        self.missing = missing


#: ``on_result(name, benchmark, result, asked)``: called as each benchmark's results come; ``asked``: whether
#: ``universal_ner`` components were made to ask the benchmark's queries (if not, a pipeline whose labels are not
#: the benchmark's types predicts none of them).
ResultCallback = Callable[[str, Benchmark, Dict[str, Any], bool], None]


def evaluate_benchmarks(
    nlp: Language,
    benchmarks: Mapping[str, Benchmark],
    reconfigure: Sequence[str] = (),
    label_map: Optional[Mapping[str, str]] = None,
    spans_keys: Sequence[str] = (),
    limit: Optional[int] = None,
    seed: int = 0,
    batch_size: int = 32,
    on_result: Optional[ResultCallback] = None,
) -> Dict[str, Dict[str, Any]]:
    """Each benchmark's results (:func:`evaluate_docs`, with the paper's figure added under ``paper``).

    ``reconfigure``: ``universal_ner`` components made to ask each benchmark's queries first. A benchmark file
    that is not there raises :class:`MissingBenchmarkFile`; a model that cannot answer, its ``BackendError``.
    """
    results: Dict[str, Dict[str, Any]] = {}
    for bench_name, benchmark in benchmarks.items():
        try:
            golds = benchmark.load(nlp, limit=limit, seed=seed)
        except FileNotFoundError as err:
            raise MissingBenchmarkFile(bench_name, err.filename or err) from err
        if reconfigure:
            ask_benchmark_queries(
                nlp, reconfigure, list(dict.fromkeys(q for d in golds for q in benchmark.queries_for(d)))
            )
        result = evaluate_docs(nlp, benchmark, golds, label_map, spans_keys, batch_size=batch_size)
        result["paper"] = benchmark.paper
        results[bench_name] = result
        if on_result is not None:
            on_result(bench_name, benchmark, result, bool(reconfigure))
    return results


def evaluate_pipeline(
    pipeline: Path,
    benchmarks: Mapping[str, Benchmark],
    output: Path,
    *,
    overrides: Optional[Dict[str, Any]] = None,
    label_map: Optional[Mapping[str, str]] = None,
    spans_keys: Sequence[str] = (),
    ask_queries: bool = True,
    limit: Optional[int] = None,
    seed: int = 0,
    batch_size: int = 32,
    name: Optional[str] = None,
    on_result: Optional[ResultCallback] = None,
) -> Dict[str, Path]:
    """Evaluate ``pipeline`` (a saved folder or a ``.cfg``) on ``benchmarks``; write metrics.json, table.md and
    f1.png (where matplotlib is installed) to ``output`` and return their paths by kind.

    ``overrides``: config overrides (``paths.output`` is set to ``output`` where the config declares it);
    ``ask_queries``: make ``universal_ner`` components ask each benchmark's queries (else they keep their labels);
    ``name``: the results' row (default: the model's name from the config, else the pipeline's file name).
    """
    from ..pretrained import folder_option
    from .report import write_reports

    overrides = dict(overrides or {})
    mapping = dict(label_map or {})
    overrides.update(output_override(pipeline, overrides, output))
    nlp = load_pipeline(pipeline, overrides)
    row_name = name or model_name(nlp) or pipeline.stem
    reconfigure = uniner_pipes(nlp) if ask_queries else []
    option = model_option(nlp)
    with folder_option(option) if option else nullcontext():  # a loading error names this option
        results = evaluate_benchmarks(
            nlp,
            benchmarks,
            reconfigure,
            mapping,
            spans_keys,
            limit=limit,
            seed=seed,
            batch_size=batch_size,
            on_result=on_result,
        )
    meta = {"pipeline": str(pipeline), "limit": limit, "seed": seed, "overrides": overrides, "label_map": mapping}
    return write_reports(results, row_name, output, meta)
