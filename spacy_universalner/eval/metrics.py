"""Scores: UniNER's official string metric, its partial-match variant, and spaCy's span scores.

The official metric compares *answer strings* per (passage, type) query, after the parser in
:func:`spacy_universalner.parsing.official_items` (first ``[...]`` at position 0, ``json.loads``,
SQuAD normalisation, de-duplication). Counts are micro-averaged over all queries of a dataset and
turned into scores with the evaluator's own ``+1e-10`` smoothing, so the numbers agree with the
official ``evaluate.py`` to the last digit. Span scores come from spaCy's :class:`Scorer` and
need offsets, so they are only as good as the gold spans of the reader.
"""

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Sequence, Tuple

from ..parsing import official_items, postprocess_response

_EPS = 1e-10


@dataclass
class Counts:
    """Micro-average counts; ``correct`` is a float so partial credit (0.5) fits too."""

    correct: float = 0.0
    pred: int = 0
    gold: int = 0

    def __iadd__(self, other: "Counts") -> "Counts":
        self.correct += other.correct
        self.pred += other.pred
        self.gold += other.gold
        return self

    def scores(self) -> Dict[str, float]:
        """Precision, recall and F1 exactly as UniNER's evaluator computes them (fractions, not %)."""
        precision = self.correct / (self.pred + _EPS)
        recall = self.correct / (self.gold + _EPS)
        f1 = 2 * precision * recall / (precision + recall + _EPS)
        return {"precision": precision, "recall": recall, "f1": f1}

    def as_dict(self) -> Dict[str, Any]:
        return {**self.scores(), "n_correct": self.correct, "n_pred": self.pred, "n_gold": self.gold}


def query_counts(prediction: str, gold: str) -> Counts:
    """Official counts for one query. The prediction is post-processed as a raw generation;
    the gold answer is parsed as it is, as in the official evaluator."""
    pred_items = official_items(postprocess_response(prediction))
    gold_items = official_items(gold)
    correct = sum(1 for item in pred_items if item in gold_items)
    return Counts(float(correct), len(pred_items), len(gold_items))


def uniner_counts(predictions: Sequence[str], golds: Sequence[str]) -> Counts:
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions but {len(golds)} gold answers.")
    total = Counts()
    for prediction, gold in zip(predictions, golds):
        total += query_counts(prediction, gold)
    return total


def uniner_f1(predictions: Sequence[str], golds: Sequence[str]) -> Dict[str, Any]:
    """The official UniNER metric over parallel lists of raw answer strings.

    Returns ``precision``, ``recall`` and ``f1`` as fractions (the paper prints ``100 * f1``),
    plus the counts ``n_correct``, ``n_pred`` and ``n_gold``.
    """
    return uniner_counts(predictions, golds).as_dict()


def _words(item: Any) -> set:
    return set(item.split()) if isinstance(item, str) else set(" ".join(item).split())


def partial_query_counts(prediction: str, gold: str) -> Counts:
    """Partial match (paper Table 5): an exact match scores 1, a prediction sharing a word with a
    still unmatched gold mention scores 0.5. Each gold mention is claimed at most once (exact
    matches first), so partial credit can never exceed the number of gold mentions."""
    pred_items = official_items(postprocess_response(prediction))
    gold_items = official_items(gold)
    unmatched = list(gold_items)
    credit = 0.0
    pending = []
    for item in pred_items:
        if item in unmatched:
            unmatched.remove(item)
            credit += 1.0
        else:
            pending.append(item)
    for item in pending:
        words = _words(item)
        for candidate in unmatched:
            if words & _words(candidate):
                unmatched.remove(candidate)
                credit += 0.5
                break
    return Counts(credit, len(pred_items), len(gold_items))


def partial_f1(predictions: Sequence[str], golds: Sequence[str]) -> Dict[str, Any]:
    """The partial-match variant of :func:`uniner_f1`, same shape of result."""
    total = Counts()
    for prediction, gold in zip(predictions, golds):
        total += partial_query_counts(prediction, gold)
    return total.as_dict()


def span_scores(examples: Iterable[Any], spans_key: str) -> Dict[str, Any]:
    """Strict span P/R/F (exact boundaries and type), overall and per type, by spaCy's Scorer.

    ``examples`` are :class:`spacy.training.Example` objects whose predicted and reference docs
    both hold the spans to compare in ``doc.spans[spans_key]`` (overlaps allowed).
    """
    from spacy.scorer import Scorer

    scores = Scorer.score_spans(
        list(examples),
        "spans",
        getter=lambda doc, attr: doc.spans.get(spans_key, []),
        has_annotation=lambda doc: True,
        allow_overlap=True,
    )
    per_type = scores.get("spans_per_type") or {}
    return {
        "precision": scores["spans_p"] or 0.0,
        "recall": scores["spans_r"] or 0.0,
        "f1": scores["spans_f"] or 0.0,
        "per_type": {label: dict(values) for label, values in sorted(per_type.items())},
    }


def per_type_counts(rows: Iterable[Tuple[str, str, str]]) -> Dict[str, Dict[str, Any]]:
    """Official-metric scores per entity type from ``(type, prediction, gold)`` rows."""
    totals: Dict[str, Counts] = {}
    for label, prediction, gold in rows:
        totals.setdefault(label, Counts())
        totals[label] += query_counts(prediction, gold)
    return {label: counts.as_dict() for label, counts in sorted(totals.items())}


__all__: List[str] = [
    "Counts",
    "partial_f1",
    "partial_query_counts",
    "per_type_counts",
    "query_counts",
    "span_scores",
    "uniner_counts",
    "uniner_f1",
]
