"""Sentences per second of a UniNER model behind ``universal_ner`` on this machine (default: ``uniner-mini``).

The issue's target: at least 20 sentences/s with 10 labels on 2 CPU cores. Sentences are real
test sentences (CrossNER politics, the zero-shot domain: long, entity-dense sentences; and CoNLL-2003,
short news sentences) read from ``--data-dir``; without it, built-in sentences are used. Every
run decodes the model's own answers (no cache), after a short warm-up.

    python benchmarks/mini_speed.py                         # uniner-mini, 2 threads
    python benchmarks/mini_speed.py --model training/uniner-mini --data-dir ../shared/data --json speed.json
    python benchmarks/mini_speed.py --max-new-tokens 256 64   # an answer cap's effect, side by side
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, List

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

LABELS = [
    "person", "organization", "location", "country", "event",
    "political party", "politician", "election", "award", "date",
]
BUILT_IN = [
    "Barack Obama visited Paris in 2015 and met the president of France at the Elysee Palace.",
    "Bill Gates founded Microsoft in Albuquerque, New Mexico, together with Paul Allen in 1975.",
    "The Labour Party won the 1997 general election and Tony Blair became Prime Minister.",
    "Marie Curie won the Nobel Prize in Physics in 1903 and the Nobel Prize in Chemistry in 1911.",
]


def sentences(data_dir: str, name: str, n: int) -> List[str]:
    """The first ``n`` sentences of a benchmark's test file, or the built-in ones repeated."""
    if data_dir:
        import spacy

        from spacy_universalner.eval.benchmarks import load_benchmarks

        bench = load_benchmarks(names=[name], data_dir=data_dir)[name]
        texts = [doc.text for doc in bench.load(spacy.blank("en"))][:n]
        if texts:
            return texts
    return (BUILT_IN * (n // len(BUILT_IN) + 1))[:n]


def measure(model: str, texts: List[str], batch_size: int, max_new_tokens: int = 256, warmup: int = 8) -> Dict[str, float]:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("universal_ner", config={
        "labels": LABELS,
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
        "model": {"@uniner_backends": "spacy_universalner.HuggingFace.v1", "name": model, "device": "cpu",
                  "batch_size": batch_size * len(LABELS)},
    })
    list(nlp.pipe(texts[:warmup]))  # loads the model; first calls are slower
    start = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=batch_size))
    seconds = time.perf_counter() - start
    return {
        "sentences": len(texts),
        "words_per_sentence": round(sum(len(d) for d in docs) / len(docs), 1),
        "labels": len(LABELS),
        "max_new_tokens": max_new_tokens,
        "seconds": round(seconds, 2),
        "sentences_per_s": round(len(texts) / seconds, 1),
        "queries_per_s": round(len(texts) * len(LABELS) / seconds, 1),
        "entities": sum(len(d.ents) for d in docs),
    }


def main(argv=None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="uniner-mini")
    parser.add_argument("--data-dir", default=os.environ.get("UNINER_DATA_DIR", ""))
    parser.add_argument("--n", type=int, default=200, help="sentences per set")
    parser.add_argument("--batch-size", type=int, default=32, help="Docs per model call")
    parser.add_argument("--max-new-tokens", type=int, nargs="+", default=[256],
                        help="answer caps to compare side by side (UniNER: 256)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the target is for 2 cores)")
    parser.add_argument("--json", default="", help="also write the figures here")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    results = {"model": args.model, "threads": args.threads, "torch": torch.__version__, "sets": {}}
    for name in ("crossner_politics_bio", "conll2003"):
        set_name = name if args.data_dir else "built-in"
        texts = sentences(args.data_dir, name, args.n)
        for cap in args.max_new_tokens:
            figures = measure(args.model, texts, args.batch_size, cap)
            key = set_name if len(args.max_new_tokens) == 1 else f"{set_name}@{cap}"
            results["sets"][key] = figures
            print(f"{set_name}: {figures['sentences_per_s']} sentences/s "
                  f"({figures['queries_per_s']} queries/s, {figures['words_per_sentence']} words/sentence, "
                  f"{figures['labels']} labels, max_new_tokens {cap}, {args.threads} threads)", flush=True)
        if not args.data_dir:
            break
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
