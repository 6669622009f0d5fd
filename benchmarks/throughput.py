"""Throughput of UniNER decoding: naive loop vs. batched ``generate`` vs. the shared-prefix engine.

All methods run in one process on the same model, passages and labels, and decode the same number
of tokens per query: EOS and every token containing ``]`` are suppressed for all of them, so each
query generates exactly ``--answer-tokens`` tokens (a random-weight model has no idea when to stop,
and a fair comparison must not let one method stop earlier than another).

    python benchmarks/throughput.py --quick --json out.json      # a smoke run: < 60 s on 2 lightly loaded CPU cores
    python benchmarks/throughput.py                              # the README table
    python benchmarks/throughput.py --model ./UniNER-7B-type --device cuda --docs 64
    python benchmarks/throughput.py --model training/smollm2 --real --docs 6 --answer-tokens 32   # real answers

Methods:
  (a) naive        one ``model.generate`` per (doc, label), as UniNER's HF script and spacy-llm's HF models
  (b) hf-batched   ``model.generate`` over left-padded batches of ``--batch-size`` queries
  (c) engine       :class:`SharedPrefixEngine`: one passage prefill per chunk, batched decoding
  (d) engine+constrained   the same with constrained answers (JSON list of passage substrings)

Memory: on CPU the process's peak RSS while a method runs (Linux VmHWM, reset before each method;
``extra`` = peak minus the RSS before it, i.e. beyond the loaded model and runtime); on CUDA,
``torch.cuda.max_memory_allocated``.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PASSAGES = [
    "Bill Gates founded Microsoft in Albuquerque, New Mexico, together with Paul Allen in 1975.",
    "Guido van Rossum created Python while working at CWI in Amsterdam, the Netherlands.",
    "Barack Obama visited Paris in 2015 and met the president of France at the Elysee Palace.",
    "The company announced on Monday that its quarterly revenue rose by 12 percent to 3.4 billion dollars.",
    "Researchers at the University of Cambridge published a paper on protein folding in Nature last week.",
    "The film was directed by Steven Spielberg and stars Tom Hanks as a lawyer in New York.",
    "Aspirin reduces the risk of heart attack, while ibuprofen treats inflammation and fever.",
    "She played the guitar and the piano in a jazz band that toured Europe and Japan in 1998.",
    "Marie Curie won the Nobel Prize in Physics in 1903 and the Nobel Prize in Chemistry in 1911.",
    "The European Central Bank in Frankfurt kept interest rates unchanged on Thursday.",
    "Lionel Messi scored twice as Inter Miami beat Orlando City at the DRV PNK Stadium.",
    "The new restaurant on Fifth Avenue serves cheap Thai food and is open until midnight.",
    "NASA launched the James Webb Space Telescope from French Guiana on an Ariane 5 rocket.",
    "Tesla opened a factory near Berlin, where it builds the Model Y for European customers.",
    "The Amazon river flows through Peru, Colombia and Brazil before reaching the Atlantic Ocean.",
    "Leo Tolstoy wrote War and Peace, which was first published in The Russian Messenger.",
]
LABELS = [
    "person",
    "organization",
    "location",
    "country",
    "date",
    "product",
    "event",
    "award",
    "programming language",
    "university",
    "disease",
    "drug",
    "musical instrument",
    "company",
    "city",
    "book",
    "money",
    "vehicle",
    "Restaurant Name",
    "Cuisine",
]


# -- measuring ------------------------------------------------------------------------------------
def _hwm() -> int:
    """The process's peak RSS (VmHWM), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak memory while the block runs: the kernel's RSS high-water mark, reset before the block
    (``/proc/self/clear_refs``; no sampling thread to steal time), or CUDA's allocator peak."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")

    def __enter__(self):
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.before = torch.cuda.memory_allocated()
        else:
            self.before = _rss()
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
        return self

    def __exit__(self, *exc):
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self.peak = _hwm()
        self.extra = self.peak - self.before


# -- the methods ----------------------------------------------------------------------------------
def _suppressed_ids(tokenizer) -> List[int]:
    """EOS and every token whose text contains ']': no method may end an answer early."""
    ids = [tokenizer.eos_token_id]
    for token_id in range(len(tokenizer)):
        if "]" in tokenizer.decode([token_id]):
            ids.append(token_id)
    return sorted(set(ids))


def naive(model, tokenizer, queries, n_tokens, suppress, batch_size) -> List[int]:
    import torch

    lengths = []
    for q in queries:
        enc = tokenizer(q.prompt, return_tensors="pt").to(model.device)
        with torch.inference_mode():
            out = model.generate(
                **enc,
                do_sample=False,
                max_new_tokens=n_tokens,
                min_new_tokens=n_tokens,
                suppress_tokens=suppress,
                pad_token_id=tokenizer.pad_token_id,
            )
        lengths.append(out.shape[1] - enc["input_ids"].shape[1])
    return lengths


def hf_batched(model, tokenizer, queries, n_tokens, suppress, batch_size) -> List[int]:
    import torch

    lengths = []
    order = sorted(range(len(queries)), key=lambda i: len(queries[i].prompt))
    for start in range(0, len(order), batch_size):
        prompts = [queries[i].prompt for i in order[start : start + batch_size]]
        enc = tokenizer(prompts, return_tensors="pt", padding=True).to(model.device)
        with torch.inference_mode():
            out = model.generate(
                **enc,
                do_sample=False,
                max_new_tokens=n_tokens,
                min_new_tokens=n_tokens,
                suppress_tokens=suppress,
                pad_token_id=tokenizer.pad_token_id,
            )
        lengths += [out.shape[1] - enc["input_ids"].shape[1]] * len(prompts)
    return lengths


def make_engine(constrained: bool):
    factories = {}  # built once per tokenizer, as a backend does (not part of the per-document cost)

    def run(model, tokenizer, queries, n_tokens, suppress, batch_size) -> List[int]:
        from spacy_universalner.backends.constrained import ConstraintFactory
        from spacy_universalner.backends.engine import SharedPrefixEngine

        factory = None
        if constrained:
            if id(tokenizer) not in factories:
                factories[id(tokenizer)] = ConstraintFactory(tokenizer, model.config.vocab_size)
            factory = factories[id(tokenizer)]
        engine = SharedPrefixEngine(
            model, tokenizer, batch_size=batch_size, suppress_token_ids=suppress, constraint=factory
        )
        return [len(d.token_ids) for d in engine.decode(queries, n_tokens)]

    return run


METHODS: Dict[str, Callable] = {
    "naive": naive,
    "hf-batched": hf_batched,
    "engine": make_engine(False),
    "engine+constrained": make_engine(True),
}


# -- setup ----------------------------------------------------------------------------------------
def default_model(hidden_size: int, layers: int) -> Path:
    from spacy_universalner.testing import build_tiny_llama

    path = Path(tempfile.gettempdir()) / f"spacy-universalner-bench-llama-h{hidden_size}-l{layers}"
    if not (path / "config.json").exists():
        build_tiny_llama(
            path,
            hidden_size=hidden_size,
            num_layers=layers,
            num_heads=max(1, hidden_size // 64),
            intermediate_size=hidden_size * 3,
            vocab_size=2048,
        )
    return path


def load(model_path: str, device: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(device).eval()
    return model, tokenizer


def queries_for(n_docs: int, labels: Sequence[str]):
    from spacy_universalner.prompt import UniNERTemplate

    template = UniNERTemplate()
    docs = [PASSAGES[i % len(PASSAGES)] + ("" if i < len(PASSAGES) else f" ({i})") for i in range(n_docs)]
    return [template.query(doc, label) for doc in docs for label in labels]


def timed_all(methods: Dict[str, Callable], model, tokenizer, docs: Dict[str, int], labels, args, suppress):
    """Best of ``--repeats`` runs per method, the methods interleaved run by run: a burst of load
    from other processes (which only ever adds time) then slows one run of each method, not every
    run of one method, and the best run of each is kept."""
    for name, method in methods.items():  # warm-up
        method(model, tokenizer, queries_for(1, labels[:2]), 2, suppress, args.batch_size)
    best: Dict[str, Dict[str, float]] = {}
    for run in range(args.repeats):
        for name, method in methods.items():
            queries = queries_for(docs[name], labels)
            with PeakMemory(args.device) as mem:
                start = time.perf_counter()
                lengths = method(model, tokenizer, queries, args.answer_tokens, suppress, args.batch_size)
                seconds = time.perf_counter() - start
            row = best.setdefault(name, {"seconds": float("inf"), "peak_bytes": 0, "extra_bytes": 0})
            row["seconds"] = min(row["seconds"], seconds)
            row["peak_bytes"] = max(row["peak_bytes"], mem.peak)
            row["extra_bytes"] = max(row["extra_bytes"], mem.extra)
            row["tokens_per_query"] = statistics.mean(lengths)
            row["docs_per_s"] = docs[name] / row["seconds"]
    return best


def prompt_split(tokenizer, queries, k: int) -> Tuple[List[int], List[int]]:
    """As the engine splits prompts of ``k`` labels per document: per document the tokens it prefills
    once (P: the longest common token prefix of its prompts), per query the rest (s)."""
    from spacy_universalner.backends.engine import _common_prefix_length, encode_prompts

    encoded = encode_prompts(tokenizer, queries)
    shared, suffix = [], []
    for d in range(len(queries) // k):
        rows = encoded[d * k : (d + 1) * k]
        split = min(_common_prefix_length(rows), min(len(r) for r in rows) - 1)
        shared.append(split)
        suffix += [len(r) - split for r in rows]
    return shared, suffix


def token_counts(tokenizer, n_docs: int, labels: Sequence[str]) -> Dict[str, float]:
    """Mean tokens per document the engine shares (P) and per label (s), see :func:`prompt_split`."""
    shared, suffix = prompt_split(tokenizer, queries_for(n_docs, labels), len(labels))
    return {"prefix": statistics.mean(shared), "suffix": statistics.mean(suffix)}


# -- quality side effect of constraints -----------------------------------------------------------
def constrained_quality(model_path: str, device: str, n_docs: int, labels: Sequence[str]) -> Dict[str, Dict]:
    """Parse failures and unaligned strings through the full component, free decoding vs. constrained."""
    import spacy

    from spacy_universalner.backends.hf import HuggingFaceBackend
    from spacy_universalner.component import UniversalNER
    from spacy_universalner.parsing import parse_answer

    nlp = spacy.blank("en")
    docs_text = [PASSAGES[i % len(PASSAGES)] for i in range(n_docs)]
    result = {}
    for name, constrained in (("free", False), ("constrained", True)):
        backend = HuggingFaceBackend(model_path, device=device, constrained=constrained, queries_per_batch=64)
        pipe = UniversalNER(nlp.vocab, labels=list(labels), model=backend, max_new_tokens=32, annotate="spans")
        list(pipe.pipe([nlp.make_doc(docs_text[0])]))  # loads the model (and the constraint's token table)
        start = time.perf_counter()
        docs = list(pipe.pipe(nlp.make_doc(t) for t in docs_text))
        seconds = time.perf_counter() - start
        answers = [r["response"] for d in docs for r in d._.uniner_responses]
        result[name] = {
            "answers": len(answers),
            "official_parse": sum(parse_answer(a).method == "official" for a in answers),
            "failed_parse": sum(parse_answer(a).method == "failed" for a in answers),
            "mentions": sum(len(parse_answer(a).mentions) for a in answers),
            "unaligned": sum(len(d._.uniner_unaligned) for d in docs),
            "spans": sum(len(d.spans["uniner"]) for d in docs),
            "docs_per_s": n_docs / seconds,
        }
    return result


# -- real answers: a trained model stops at its EOS; the methods must agree -------------------------
def generate_answers(model, tokenizer, queries, cap: int, batch_size: int) -> List[List[int]]:
    """Greedy ``generate`` answers (token ids, EOS excluded); ``batch_size`` 1 is the naive loop."""
    import torch

    answers: List[List[int]] = [[] for _ in queries]
    order = sorted(range(len(queries)), key=lambda i: len(queries[i].prompt))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        enc = tokenizer([queries[i].prompt for i in rows], return_tensors="pt", padding=True).to(model.device)
        with torch.inference_mode():
            out = model.generate(**enc, do_sample=False, max_new_tokens=cap, pad_token_id=tokenizer.pad_token_id)
        for i, ids in zip(rows, out[:, enc["input_ids"].shape[1] :].tolist()):
            answers[i] = ids[: ids.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in ids else ids
    return answers


def engine_answers(model, tokenizer, queries, cap: int, batch_size: int) -> List[List[int]]:
    """The shared-prefix engine's answers, run to EOS as ``generate`` is (no early stop at the list end)."""
    from spacy_universalner.backends.engine import SharedPrefixEngine

    engine = SharedPrefixEngine(model, tokenizer, batch_size=batch_size, stop_at_list_end=False)
    return [d.token_ids for d in engine.decode(queries, cap)]


def matmul_flops(device: str, size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a large float32 matmul: what the hardware gives a dense model at best."""
    import torch

    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def non_embedding_parameters(model) -> int:
    """Parameters that every processed token multiplies through (embedding lookups are free; a tied or
    separate output layer costs one vocabulary-sized matmul per token only where logits are taken)."""
    embedding = model.get_input_embeddings().weight
    return sum(p.numel() for p in model.parameters() if p is not embedding)


def real_answers(model, tokenizer, args) -> Dict:
    """Naive loop vs. batched ``generate`` vs. the engine on a trained model's real answers (EOS stops),
    with answers compared and the engine's time set against the compute bound of the tokens it processed."""
    from spacy_universalner.prompt import UniNERTemplate

    template = UniNERTemplate(separator=tokenizer.eos_token)
    labels = LABELS[:10]
    docs = [PASSAGES[i % len(PASSAGES)] for i in range(args.docs or 6)]
    queries = [template.query(doc, label) for doc in docs for label in labels]
    naive_queries = queries[: (args.naive_docs or len(docs)) * len(labels)]
    cap = args.answer_tokens
    engine_answers(model, tokenizer, queries[:2], 2, args.batch_size)  # warm-up
    rows, answers = {}, {}
    for name, run, qs in (
        ("naive", lambda q: generate_answers(model, tokenizer, q, cap, 1), naive_queries),
        ("hf-batched", lambda q: generate_answers(model, tokenizer, q, cap, args.batch_size), queries),
        ("engine", lambda q: engine_answers(model, tokenizer, q, cap, args.batch_size), queries),
    ):
        start = time.perf_counter()
        answers[name] = run(qs)
        seconds = time.perf_counter() - start
        rows[name] = {"docs": len(qs) // len(labels), "seconds": seconds, "docs_per_s": len(qs) / len(labels) / seconds}
        print(f"  {name}: {rows[name]['docs_per_s']:.3f} docs/s", file=sys.stderr)
    n = len(naive_queries)
    shared, suffixes = prompt_split(tokenizer, queries, len(labels))
    prefix, suffix = sum(shared), sum(suffixes)
    answer = sum(len(a) + 1 for a in answers["engine"])  # each answer token, and the EOS, is one decoding step
    flops = matmul_flops(args.device)
    params = non_embedding_parameters(model)
    bound = (prefix + suffix + answer) * 2 * params / flops
    return {
        "labels": len(labels),
        "docs": len(docs),
        "answer_cap": cap,
        "methods": rows,
        "engine_equal_to_naive": sum(a == b for a, b in zip(answers["engine"][:n], answers["naive"])),
        "hf_batched_equal_to_naive": sum(a == b for a, b in zip(answers["hf-batched"][:n], answers["naive"])),
        "engine_equal_to_hf_batched": sum(a == b for a, b in zip(answers["engine"], answers["hf-batched"])),
        "compared_with_naive": n,
        "queries": len(queries),
        "answers_capped": sum(len(a) >= cap for a in answers["engine"]),
        "tokens": {"prefix": prefix, "suffix": suffix, "answer": answer},
        "non_embedding_parameters": params,
        "matmul_flops": flops,
        "compute_bound_seconds": bound,
        "engine_over_bound": rows["engine"]["seconds"] / bound,
        "speedup": rows["engine"]["docs_per_s"] / rows["naive"]["docs_per_s"],
        "example_answers": [tokenizer.decode(a) for a in answers["engine"][:3]],
    }


def report_real(f: Dict) -> str:
    r = f["real"]
    t = r["tokens"]
    lines = [
        f"model: {f['model']} ({f['parameters'] / 1e6:.1f}M parameters, {r['non_embedding_parameters'] / 1e6:.1f}M "
        f"non-embedding), device {f['device']}, {f['torch_threads']} threads; {r['docs']} passages x "
        f"{r['labels']} labels, "
        f"answers to EOS (cap {r['answer_cap']} tokens; {r['answers_capped']} of {r['queries']} hit it), batch "
        f"{f['batch_size']}",
        "",
        "| method | docs/s | vs naive |",
        "|---|---|---|",
    ]
    for name, row in r["methods"].items():
        lines.append(
            f"| {name} | {row['docs_per_s']:.3f} | {row['docs_per_s'] / r['methods']['naive']['docs_per_s']:.1f}x |"
        )
    lines += [
        "",
        f"answers equal to the naive loop's: engine {r['engine_equal_to_naive']}/{r['compared_with_naive']}, "
        f"hf-batched {r['hf_batched_equal_to_naive']}/{r['compared_with_naive']}; "
        f"engine vs hf-batched {r['engine_equal_to_hf_batched']}/{r['queries']}",
        f"compute bound of the engine's work: {t['prefix'] + t['suffix'] + t['answer']:,} tokens ({t['prefix']} "
        f"prefix, "
        f"{t['suffix']} suffix, {t['answer']} answer) x 2 x {r['non_embedding_parameters'] / 1e6:.1f}M parameters at "
        f"{r['matmul_flops'] / 1e9:.0f} GFLOP/s (float32 2048^3 matmul, this run) = "
        f"{r['compute_bound_seconds']:.1f} s; "
        f"the engine took {r['methods']['engine']['seconds']:.1f} s, {r['engine_over_bound']:.1f}x the bound",
        f"speedup (engine over naive): {r['speedup']:.1f}x",
    ]
    return "\n".join(lines)


# -- report ---------------------------------------------------------------------------------------
def main(argv=None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a local causal LM folder (default: a random ~25M LLaMA built locally)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--docs", type=int, default=None, help="documents per method (default 24; quick 4)")
    parser.add_argument("--naive-docs", type=int, default=None, help="documents for the slow naive loop")
    parser.add_argument(
        "--answer-tokens",
        type=int,
        default=8,
        help="tokens decoded per query, all methods (8: about a one-mention UniNER answer)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="queries per batch, (b) and (c)")
    parser.add_argument("--hidden-size", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="runs per measurement, methods interleaved, best kept (default 3; quick 1)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run in well under a minute: fewer documents, one run per method, label "
        "scaling of the engine only; its figures are noisier than a full run's",
    )
    parser.add_argument("--json", dest="json_path", help="write the figures here")
    parser.add_argument(
        "--real",
        action="store_true",
        help="a trained --model: answers run to its EOS (--answer-tokens caps them), the methods' "
        "answers are compared, and the engine's time is set against the compute bound",
    )
    args = parser.parse_args(argv)

    # Mistakes end in one line before any work (not a transformers traceback, nor figures lost at the end).
    if args.model and not Path(args.model).expanduser().is_dir():
        sys.exit(
            f"throughput.py: --model {args.model}: there is no folder there (a local causal LM folder, "
            "e.g. training/smollm2; without --model a random LLaMA is built)"
        )
    if args.real and not args.model:
        sys.exit("throughput.py: --real needs --model, a trained model whose answers end at its EOS")
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(
            f"throughput.py: --device {args.device}, but torch sees no CUDA device (leave --device out to run "
            f"on the CPU)"
        )
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    quick = args.quick
    # Quick mode is a smoke run (well under a minute on 2 lightly loaded cores): one run per method, fewer documents.
    args.repeats = args.repeats or (1 if quick else 3)
    n_docs = args.docs or (4 if quick else 24)
    naive_docs = args.naive_docs or (1 if quick else 6)
    model_path = args.model or str(default_model(args.hidden_size, args.layers))
    t0 = time.perf_counter()
    model, tokenizer = load(model_path, args.device)
    if args.real:
        figures = {
            "model": args.model,
            "parameters": sum(p.numel() for p in model.parameters()),
            "device": args.device,
            "torch_threads": torch.get_num_threads(),
            "batch_size": args.batch_size,
            "real": real_answers(model, tokenizer, args),
        }
        figures["total_seconds"] = time.perf_counter() - t0
        print(report_real(figures))
        if args.json_path:
            Path(args.json_path).write_text(json.dumps(figures, indent=2))
        return figures
    suppress = _suppressed_ids(tokenizer)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    cfg = model.config
    prompt_tokens = max(len(tokenizer(q.prompt)["input_ids"]) for q in queries_for(len(PASSAGES), LABELS))
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv_per_token = (
        2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim * next(model.parameters()).element_size()
    )
    kv_batch = kv_per_token * args.batch_size * (prompt_tokens + args.answer_tokens)

    labels10 = LABELS[:10]
    docs_of = {name: (naive_docs if name == "naive" else n_docs) for name in METHODS}
    rows = timed_all(METHODS, model, tokenizer, docs_of, labels10, args, suppress)
    for name in METHODS:
        print(f"  {name}: {rows[name]['docs_per_s']:.3f} docs/s", file=sys.stderr)
    scaling: Dict[str, Dict[int, float]] = {}
    # The naive loop at 20 labels is the slowest measurement of all; quick mode scales the engine only.
    scale_methods = ["engine"] if quick else ["naive", "hf-batched", "engine", "engine+constrained"]
    scale_docs = {name: (naive_docs if name == "naive" else n_docs) for name in scale_methods}
    for name in scale_methods:
        scaling[name] = {10: rows[name]["seconds"] / docs_of[name]}
    for k in (1, 5, 20):
        timings = timed_all(
            {m: METHODS[m] for m in scale_methods}, model, tokenizer, scale_docs, LABELS[:k], args, suppress
        )
        for name in scale_methods:
            scaling[name][k] = timings[name]["seconds"] / scale_docs[name]
    for name in scale_methods:
        scaling[name] = {k: scaling[name][k] for k in (1, 5, 10, 20)}
        print(
            f"  scaling {name}: " + ", ".join(f"{k}: {v:.3f}s/doc" for k, v in scaling[name].items()), file=sys.stderr
        )
    counts = token_counts(tokenizer, n_docs, LABELS)
    per_label = counts["suffix"] + args.answer_tokens
    compute_bound = (counts["prefix"] + 20 * per_label) / (counts["prefix"] + per_label)
    quality = constrained_quality(model_path, args.device, 1 if quick else 16, labels10)
    naive_rate = rows["naive"]["docs_per_s"]
    figures = {
        "model": args.model or f"random LLaMA h{args.hidden_size} l{args.layers}",
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "prompt_tokens_max": prompt_tokens,
        "labels": 10,
        "answer_tokens": args.answer_tokens,
        "batch_size": args.batch_size,
        "model_bytes": params,
        "kv_cache_one_batch_bytes": kv_batch,
        "methods": rows,
        "label_scaling_seconds_per_doc": scaling,
        "label_scaling_20_over_1": {m: s[20] / s[1] for m, s in scaling.items()},
        "label_scaling_target": 3.0,
        "tokens_shared_per_doc": counts["prefix"],
        "tokens_per_label_prompt": counts["suffix"],
        "compute_bound_20_over_1": compute_bound,
        "constrained_quality": quality,
        "naive_docs_per_s": naive_rate,
        "engine_docs_per_s": rows["engine"]["docs_per_s"],
        "engine_constrained_docs_per_s": rows["engine+constrained"]["docs_per_s"],
        "hf_batched_docs_per_s": rows["hf-batched"]["docs_per_s"],
        "speedup": rows["engine"]["docs_per_s"] / naive_rate,
        "total_seconds": time.perf_counter() - t0,
    }
    print(report(figures))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(figures, indent=2))
    return figures


def report(f: Dict) -> str:
    mb = 1024 * 1024
    lines = [
        f"model: {f['model']} ({f['parameters'] / 1e6:.1f}M parameters, {f['model_bytes'] / mb:.0f} MiB), "
        f"device {f['device']}, {f['torch_threads']} threads; {f['labels']} labels, "
        f"{f['answer_tokens']} tokens per answer (forced), batch {f['batch_size']}, best of {f['repeats']}, "
        f"prompts up to {f['prompt_tokens_max']} tokens",
        "",
        "| method | docs/s | vs naive | tokens/query | peak memory (MiB) | extra over loaded model (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in f["methods"].items():
        lines.append(
            f"| {name} | {r['docs_per_s']:.3f} | {r['docs_per_s'] / f['naive_docs_per_s']:.1f}x | "
            f"{r['tokens_per_query']:.0f} | {r['peak_bytes'] / mb:.0f} | {r['extra_bytes'] / mb:.0f} |"
        )
    lines += [
        "",
        f"one batch of KV cache: {f['kv_cache_one_batch_bytes'] / mb:.1f} MiB; "
        f"model + KV: {(f['model_bytes'] + f['kv_cache_one_batch_bytes']) / mb:.0f} MiB",
        "",
    ]
    lines += [
        "| labels | " + " | ".join(f"{m} s/doc" for m in f["label_scaling_seconds_per_doc"]) + " |",
        "|---|" + "---|" * len(f["label_scaling_seconds_per_doc"]),
    ]
    for k in (1, 5, 10, 20):
        lines.append(
            f"| {k} | " + " | ".join(f"{s[k]:.3f}" for s in f["label_scaling_seconds_per_doc"].values()) + " |"
        )
    lines.append("| 20 vs 1 | " + " | ".join(f"{v:.1f}x" for v in f["label_scaling_20_over_1"].values()) + " |")
    target = f["label_scaling_target"]
    lines.append(
        "| 20 vs 1 within target (<= %.0fx)? | " % target
        + " | ".join("yes" if v <= target else "no" for v in f["label_scaling_20_over_1"].values())
        + " |"
    )
    shared = f["tokens_shared_per_doc"]
    lines += [
        "",
        f"Note: with one passage prefill per document, the work per document is about P + n(s + a) tokens "
        f"(P = {shared:.1f} shared prompt tokens, s = {f['tokens_per_label_prompt']:.1f} label tokens, "
        f"a = {f['answer_tokens']} answer tokens, n labels): if every token cost the same compute, 20 labels "
        f"would take (P + 20(s + a)) / (P + s + a) = {f['compute_bound_20_over_1']:.1f}x the time of 1 label "
        f"(fixed per-pass costs, which weigh more with 1 label, lower the measured ratio); "
        f"the engine measured {f['label_scaling_20_over_1']['engine']:.1f}x against the {target:.0f}x target.",
    ]
    q = f["constrained_quality"]
    lines += [
        "",
        "| decoding (component, 32 new tokens max, EOS allowed) | answers | official parse | failed parse "
        "| mentions | unaligned | docs/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in q.items():
        lines.append(
            f"| {name} | {r['answers']} | {r['official_parse']} | {r['failed_parse']} | {r['mentions']} "
            f"| {r['unaligned']} | {r['docs_per_s']:.2f} |"
        )
    lines += ["", f"speedup (engine over naive, 10 labels): {f['speedup']:.1f}x; total {f['total_seconds']:.0f} s"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
