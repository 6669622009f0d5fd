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
"""
import json
import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example

from .benchmarks import Benchmark
from .metrics import Counts, partial_query_counts, per_type_counts, query_counts, span_scores
from .readers import ANSWERS_KEY, GOLD_KEY, answer_from_spans, gold_answers

EVAL_KEY = "uniner_eval"
UNINER_FACTORY = "universal_ner"


def uniner_pipes(nlp: Language) -> List[str]:
    """Names of the pipeline's ``universal_ner`` components."""
    return [name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory == UNINER_FACTORY]


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

    pipes = [nlp.get_pipe(pipe_name) for pipe_name in uniner_pipes(nlp)]
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
    from pathlib import Path

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
