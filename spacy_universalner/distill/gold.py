"""``gold``: supervised NER files -> UniNER conversations (supervised instruction data).

UniNER's supervised variant adds human-labelled sets to the distilled data, asking each passage
about every type of its dataset, under a natural-language name (``PER`` -> "person"). The sets
are described in the same format as the benchmarks (``eval/benchmarks.cfg``: a reader and a
``types`` table), so any file the evaluation can read can also be trained on; see
``spacy_universalner/configs/mini_sources.cfg`` for the sets ``uniner-span`` is trained on. The output is a
Pile-NER-type conversation file, which ``build`` reads like any other source.

Negatives must be true. A set that labels its schema completely is asked every type of it (an
absent type answers ``[]``); a partially labelled one (``complete = false``: silver links, one
type per sentence) only the types its passage has, since its unlabelled spans may be mentions.
Where the definition states ``complete``, each record carries it (``"complete": true/false``) for
``build`` and ``train-span``; ``negatives = "drawn"`` (Pile-NER-type passages, whose teacher listed every
entity of every type) lets them draw negative types from the teacher data as well. A type with several names is
asked under one of them per passage, drawn with the seed. A set's ``broader`` table (a company is also an
organization) adds a query's mentions to the answers of its broader queries.
"""

import random
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from ..conversations import make_conversation, write_conversations
from ..eval.benchmarks import load_benchmarks
from ..eval.readers import GOLD_KEY


def gold_conversations(
    config_path: Union[str, Path],
    names: Optional[Sequence[str]] = None,
    *,
    limit: int = 0,
    seed: int = 0,
    data_dir: Union[str, Path, None] = None,
) -> Dict[str, List[Dict[str, Any]]]:
    """``{set name: conversations}``; ``limit`` > 0 keeps a seeded sample of that many passages per set
    (a set's own ``limit`` replaces it)."""
    import spacy

    nlp = spacy.blank("en")
    result = {}
    for name, benchmark in load_benchmarks(config_path, names, data_dir=data_dir).items():
        synonyms = {query: listed for query, listed in benchmark.names.items() if len(listed) > 1}
        rng = random.Random(f"{seed}:{name}")
        records = []
        for index, doc in enumerate(benchmark.load(nlp, limit=limit or None, seed=seed)):
            answers: Dict[str, List[str]] = {query: [] for query in benchmark.queries}
            for span in doc.spans.get(GOLD_KEY, []):
                mentions = answers.setdefault(span.label_, [])
                if span.text not in mentions:
                    mentions.append(span.text)
            for query, wider in benchmark.broader.items():
                for broader in wider:
                    covering = answers.setdefault(broader, [])
                    covering.extend(m for m in answers.get(query, []) if m not in covering)
            if benchmark.complete is False:  # only what the passage has: its unlabelled spans are unknown
                answers = {query: mentions for query, mentions in answers.items() if mentions}
                if not answers:
                    continue  # nothing it can vouch for
            pairs = [(rng.choice(synonyms[q]) if q in synonyms else q, mentions) for q, mentions in answers.items()]
            record = make_conversation(f"{name}:{index}", doc.text, pairs)
            if benchmark.complete is not None:
                record["complete"] = benchmark.complete
            if benchmark.negatives:
                record["negatives"] = benchmark.negatives
            records.append(record)
        result[name] = records
    return result


def run_gold(
    config_path: Union[str, Path],
    output: Union[str, Path],
    names: Optional[Sequence[str]] = None,
    *,
    limit: int = 0,
    seed: int = 0,
    data_dir: Union[str, Path, None] = None,
) -> Dict[str, int]:
    """Write all sets' conversations to one JSON file; return passages per set."""
    per_set = gold_conversations(config_path, names, limit=limit, seed=seed, data_dir=data_dir)
    write_conversations(output, [record for records in per_set.values() for record in records])
    return {name: len(records) for name, records in per_set.items()}
