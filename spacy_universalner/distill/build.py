"""``build``: teacher answers -> UniNER instruction conversations (Pile-NER-type format).

Following the paper: answers that cannot be parsed are dropped (and counted), types are
normalised, ELSE/NONE/NA/MISC-like types and mentions that do not occur in the passage are
dropped, each passage becomes one conversation (``Text:`` / ``I've read this text.``, then one
``What describes {type} in the text?`` / JSON-list turn per type), negative types (answer
``[]``) are sampled with probability proportional to their frequency over the whole dataset,
and the query order is shuffled per passage (the Text turn stays first).

Inputs (one or several files, merged; a passage repeated across files is kept once): the JSONL
written by ``annotate``, or an existing Pile-NER-type file (a JSON list, or
JSONL, of ``{"conversations": [...]}``), or SLIMER's one-question-per-line Pile-NER sample.
For Pile-NER-type input the file's own ``[]`` queries are kept and count towards ``negatives``.

Records written by ``gold`` carry a ``complete`` flag (does their source label its whole schema?) and
keep it: their negatives are their own schema's absent types, all of them and nothing drawn, since a
type from another schema ("company" for a CoNLL sentence) is unknown there, not absent. A gold record with
``"negatives": "drawn"`` (Pile-NER-type passages) is treated like teacher data here.
"""

import bisect
import itertools
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from ..conversations import answer_list, make_conversation, read_conversation, write_conversations
from ..jsonl import read_records
from .tuples import parse_tuples

#: Negative (answer ``[]``) queries per passage. The paper does not give its count; the released
#: Pile-NER-type file has ~7.8 queries per passage in all, about two of them negative when a
#: passage has ~5-6 positive types, so 2 is the default.
DEFAULT_NEGATIVES = 2
DROP_TYPES = frozenset(
    {"else", "none", "na", "n/a", "n.a.", "misc", "miscellaneous", "other", "others", "unknown", "null", "nil", ""}
)


@dataclass
class Passage:
    """One passage and its positive types (type -> mentions, in the teacher's order)."""

    id: str
    text: str
    positives: Dict[str, List[str]] = field(default_factory=dict)
    given_negatives: List[str] = field(default_factory=list)
    #: ``gold``'s flag: None for teacher data (negatives drawn), True/False for a fixed-schema source.
    complete: Optional[bool] = None
    #: ``gold``'s ``"negatives": "drawn"``: a gold source whose absent teacher types are vouched for.
    drawn: bool = False

    @property
    def schema_bound(self) -> bool:
        """Negatives only from its own schema (the ``[]`` answers it came with), none drawn."""
        return self.complete is not None and not self.drawn


@dataclass
class BuildStats:
    records: int = 0
    passages: int = 0
    duplicate_passages: int = 0
    unparseable_answers: int = 0
    unparseable_items: int = 0
    mentions_in: int = 0
    mentions: int = 0
    dropped_types: Counter = field(default_factory=Counter)
    dropped_not_in_passage: int = 0
    dropped_duplicates: int = 0
    dropped_empty: int = 0
    negatives: int = 0
    queries: int = 0
    type_counts: Counter = field(default_factory=Counter)

    def as_dict(self, top: int = 20) -> Dict[str, Any]:
        return {
            "records_read": self.records,
            "passages": self.passages,
            "mentions": self.mentions,
            "types": len(self.type_counts),
            "top_types": self.type_counts.most_common(top),
            "negatives": self.negatives,
            "queries": self.queries,
            "queries_per_passage": round(self.queries / self.passages, 2) if self.passages else 0.0,
            "dropped": {
                "duplicate_passages": self.duplicate_passages,
                "unparseable_answers": self.unparseable_answers,
                "unparseable_items": self.unparseable_items,
                "mentions_in_answers": self.mentions_in,
                "mentions_of_dropped_types": sum(self.dropped_types.values()),
                "dropped_types": dict(self.dropped_types.most_common(top)),
                "mentions_not_in_passage": self.dropped_not_in_passage,
                "duplicate_mentions": self.dropped_duplicates,
                "empty_mentions": self.dropped_empty,
            },
        }


def normalize_type(label: str, lowercase: bool = True) -> str:
    """Trim quotes and punctuation at the ends, underscores to spaces, collapse whitespace."""
    label = label.replace("_", " ").strip().strip("\"'`.,;:-*").strip()
    label = " ".join(label.split())
    return label.lower() if lowercase else label


# ---------------------------------------------------------------------------- reading inputs
def _from_conversation(index: int, record: Dict[str, Any]) -> Passage:
    text, pairs = read_conversation(record, strict=False)
    passage = Passage(str(record.get("id", index)), text)
    if isinstance(record.get("complete"), bool):
        passage.complete = record["complete"]
    passage.drawn = record.get("negatives") == "drawn"
    for label, answer in pairs:
        items = answer_list(answer)
        if items == []:
            passage.given_negatives.append(label)
        elif items is not None:
            passage.positives.setdefault(label, []).extend(m for m in items if isinstance(m, str))
    return passage


def read_passages(path: Union[str, Path], stats: BuildStats) -> Iterator[Tuple[Passage, List[Tuple[str, str]]]]:
    """``(passage, [(mention, raw type), ...])`` for every usable input record, any supported format."""
    slimer: Dict[str, Passage] = {}
    for index, record in enumerate(read_records(path)):
        stats.records += 1
        if "conversations" in record:
            passage = _from_conversation(index, record)
            pairs = [(m, t) for t, ms in passage.positives.items() for m in ms]
            passage.positives = {}
            yield passage, pairs
        elif "answer" in record:  # annotate output: re-parse the raw answer with the current parser
            parsed = parse_tuples(record["answer"])
            if not parsed.ok:
                stats.unparseable_answers += 1
                continue
            stats.unparseable_items += parsed.bad_items
            yield Passage(str(record["id"]), record["text"]), parsed.pairs
        elif "tagName" in record and "input" in record:  # SLIMER: one question per line
            doc = str(record.get("doc_question_pairID", index)).split(":")[0]
            passage = slimer.setdefault(doc, Passage(doc, record["input"]))
            try:
                mentions = json.loads(record["output"])
            except ValueError:
                stats.unparseable_answers += 1
                continue
            if mentions:
                passage.positives.setdefault(record["tagName"], []).extend(mentions)
            else:
                passage.given_negatives.append(record["tagName"])
        else:
            raise ValueError(f"{path}: record {index} is neither annotate output nor Pile-NER-type: {list(record)}")
    for passage in slimer.values():
        pairs = [(m, t) for t, ms in passage.positives.items() for m in ms]
        passage.positives = {}
        yield passage, pairs


# ---------------------------------------------------------------------------- filtering
def clean_passage(
    passage: Passage, pairs: Iterable[Tuple[str, str]], stats: BuildStats, lowercase: bool = True
) -> Passage:
    """Normalise types, drop MISC-like types, mentions absent from the passage and repeats."""
    for mention, raw_type in pairs:
        stats.mentions_in += 1
        label = normalize_type(raw_type, lowercase)
        if label in DROP_TYPES:
            stats.dropped_types[label or "<empty>"] += 1
            continue
        mention = mention.strip()
        if not mention:
            stats.dropped_empty += 1
            continue
        if mention not in passage.text:
            stats.dropped_not_in_passage += 1
            continue
        mentions = passage.positives.setdefault(label, [])
        if mention in mentions:
            stats.dropped_duplicates += 1
            continue
        mentions.append(mention)
    negatives = []
    for label in passage.given_negatives:
        label = normalize_type(label, lowercase)
        if label not in DROP_TYPES and label not in passage.positives and label not in negatives:
            negatives.append(label)
    passage.given_negatives = negatives
    return passage


# ---------------------------------------------------------------------------- negatives
class FrequencySampler:
    """Draws types with probability proportional to their frequency, without replacement."""

    def __init__(self, counts: Counter):
        self.types = sorted(counts)  # sorted: the same seed gives the same data on every machine
        self.weights = [counts[t] for t in self.types]
        self.cumulative = list(itertools.accumulate(self.weights))

    def sample(self, k: int, exclude: Sequence[str], rng: random.Random) -> List[str]:
        excluded = set(exclude)
        available = len(self.types) - len(excluded & set(self.types))
        k = min(k, available)
        chosen: List[str] = []
        attempts = 0
        # Fast path: draw from the whole distribution and reject excluded or repeated types.
        while len(chosen) < k and attempts < 20 * k:
            attempts += 1
            index = bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])
            label = self.types[min(index, len(self.types) - 1)]
            if label not in excluded and label not in chosen:
                chosen.append(label)
        if len(chosen) < k:
            # Excluded types hold most of the mass: draw exactly from what is left.
            weights = dict(zip(self.types, self.weights))
            left = [t for t in self.types if t not in excluded and t not in chosen]
            while len(chosen) < k and left:
                label = rng.choices(left, weights=[weights[t] for t in left])[0]
                chosen.append(label)
                left.remove(label)
        return chosen


def build_conversations(
    source: Union[str, Path, Sequence[Union[str, Path]]],
    *,
    negatives: int = DEFAULT_NEGATIVES,
    seed: int = 0,
    lowercase: bool = True,
) -> Tuple[List[Dict[str, Any]], BuildStats]:
    stats = BuildStats()
    passages: List[Passage] = []
    seen_texts = set()
    sources = [source] if isinstance(source, (str, Path)) else list(source)
    pairs_per_passage = (item for path in sources for item in read_passages(path, stats))
    for passage, pairs in pairs_per_passage:
        key = " ".join(passage.text.split())
        if key in seen_texts:
            stats.duplicate_passages += 1
            continue
        seen_texts.add(key)
        passages.append(clean_passage(passage, pairs, stats, lowercase))
    # Drawn negatives come from the teacher's open-type passages only (see the module docstring).
    frequency = Counter(label for p in passages if not p.schema_bound for label in p.positives)
    sampler = FrequencySampler(frequency) if frequency else None
    rng = random.Random(seed)
    records = []
    for passage in passages:
        queries: List[Tuple[str, List[str]]] = list(passage.positives.items())
        if passage.schema_bound:
            negative_types = list(passage.given_negatives)  # its own schema's absent types, nothing drawn
        else:
            negative_types = list(passage.given_negatives[:negatives]) if negatives else []
            if sampler is not None and len(negative_types) < negatives:
                exclude = list(passage.positives) + negative_types
                negative_types += sampler.sample(negatives - len(negative_types), exclude, rng)
        queries += [(label, []) for label in negative_types]
        rng.shuffle(queries)
        record = make_conversation(passage.id, passage.text, queries)
        if passage.complete is not None:
            record["complete"] = passage.complete
        if passage.drawn:
            record["negatives"] = "drawn"
        records.append(record)
        stats.passages += 1
        stats.negatives += len(negative_types)
        stats.queries += len(queries)
        stats.mentions += sum(len(m) for m in passage.positives.values())
        stats.type_counts.update({label: len(m) for label, m in passage.positives.items()})
    return records, stats


def run_build(
    source: Union[str, Path, Sequence[Union[str, Path]]],
    output: Union[str, Path],
    *,
    negatives: int = DEFAULT_NEGATIVES,
    seed: int = 0,
    lowercase: bool = True,
    stats_path: Optional[Union[str, Path]] = None,
) -> Dict[str, Any]:
    records, stats = build_conversations(source, negatives=negatives, seed=seed, lowercase=lowercase)
    write_conversations(output, records)
    summary = stats.as_dict()
    if stats_path:
        Path(stats_path).parent.mkdir(parents=True, exist_ok=True)
        Path(stats_path).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf8")
    return summary
