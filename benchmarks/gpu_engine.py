"""The shared-prefix engine on a GPU, at LLaMA-7B's shape, with random weights (nothing to download or carry).

The device machine has torch and transformers but no spaCy and no network, and no real 7B weights travel
to it; the engine's equality and speed do not depend on what the weights mean. One run, two checks:

1. equality (float32, TF32 off): the engine's greedy answers against ``model.generate``'s on the same
   queries (``--equal-docs`` passages x 10 labels, up to ``--equal-tokens`` tokens, EOS as generate has it);
2. throughput (bfloat16): HF batched ``generate`` against the engine, ``--docs`` passages x 10 labels,
   every method made to decode exactly ``--answer-tokens`` tokens per query (as ``throughput.py`` does).

    python benchmarks/gpu_engine.py --json gpu.json                    # on the GPU: LLaMA-7B's shape
    python benchmarks/gpu_engine.py --preset tiny --device cpu         # the same script, in seconds on a CPU

The vocabulary is that of a byte-level BPE trained on the spot (``spacy_universalner.testing``), so the LM head
has 717 rows instead of LLaMA's 32,000 (6.48B parameters instead of 6.74B); everything else has LLaMA-7B's shape.
"""

import argparse
import json
import sys
import time
import types
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from throughput import LABELS, _suppressed_ids, engine_answers, generate_answers, hf_batched, make_engine, queries_for  # noqa: E402

#: name -> LlamaConfig shape (LLaMA-7B: Touvron et al. 2023, Table 2).
PRESETS: Dict[str, Dict[str, int]] = {
    "llama-7b": {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32},
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4},
}


def import_engine_without_spacy() -> None:
    """Make ``spacy_universalner.backends.engine`` importable where spaCy is not installed.

    The backends package registers its spaCy factories on import; the engine itself needs only torch,
    transformers and the package's prompt and parsing modules. Where spaCy is missing, the package is
    entered without running its ``__init__``.
    """
    try:
        import spacy  # noqa: F401
    except ImportError:
        backends = types.ModuleType("spacy_universalner.backends")
        backends.__path__ = [str(HERE.parent / "spacy_universalner" / "backends")]
        sys.modules["spacy_universalner.backends"] = backends


def build(preset: str, device: str, seed: int):
    """A random-weight LLaMA of ``preset``'s shape, in float32 on ``device``, and its tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from spacy_universalner.testing import build_tokenizer

    tokenizer = build_tokenizer(2048)
    tokenizer.padding_side = "left"
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=4096,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
        **PRESETS[preset],
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = 0
    return model.eval(), tokenizer


def equality(model, tokenizer, docs: int, cap: int, batch_size: int) -> Dict:
    """How many of the engine's answers equal ``generate``'s, token for token."""
    queries = queries_for(docs, LABELS[:10])
    start = time.perf_counter()
    expected = generate_answers(model, tokenizer, queries, cap, batch_size)
    got = engine_answers(model, tokenizer, queries, cap, batch_size)
    differ = [i for i, (a, b) in enumerate(zip(expected, got)) if a != b]
    first = None
    if differ:
        a, b = expected[differ[0]], got[differ[0]]
        first = {
            "query": differ[0],
            "position": next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b))),
        }
    return {
        "queries": len(queries),
        "equal": len(queries) - len(differ),
        "first_difference": first,
        "answer_tokens_mean": sum(map(len, expected)) / len(expected),
        "seconds": time.perf_counter() - start,
    }


def throughput(model, tokenizer, docs: int, n_tokens: int, batch_size: int, repeats: int) -> Dict:
    """Docs per second of HF batched ``generate`` and of the engine (best of ``repeats``, interleaved)."""
    import torch

    suppress = _suppressed_ids(tokenizer)
    methods = {"hf-batched": hf_batched, "engine": make_engine(False)}
    queries = queries_for(docs, LABELS[:10])
    for method in methods.values():  # warm-up: kernels, allocator
        method(model, tokenizer, queries[:20], 2, suppress, batch_size)
    best = {name: float("inf") for name in methods}
    for _ in range(repeats):
        for name, method in methods.items():
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            lengths = method(model, tokenizer, queries, n_tokens, suppress, batch_size)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
            assert set(lengths) == {n_tokens}, f"{name} decoded {set(lengths)} tokens, not {n_tokens}"
    rows = {name: {"seconds": s, "docs_per_s": docs / s} for name, s in best.items()}
    rows["engine_over_hf_batched"] = rows["engine"]["docs_per_s"] / rows["hf-batched"]["docs_per_s"]
    return rows


def main(argv: List[str] = None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="llama-7b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--equal-docs", type=int, default=12, help="passages x 10 labels for the equality check")
    parser.add_argument("--equal-tokens", type=int, default=24, help="answer cap of the equality check")
    parser.add_argument("--docs", type=int, default=64, help="passages x 10 labels for the throughput check")
    parser.add_argument("--answer-tokens", type=int, default=32, help="tokens decoded per query, both methods")
    parser.add_argument("--batch-size", type=int, default=64, help="queries per batch, both methods")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_path", help="write the figures here")
    args = parser.parse_args(argv)

    import_engine_without_spacy()
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():  # one line, not torch's traceback
        sys.exit(
            f"gpu_engine.py: --device {args.device}, but torch sees no CUDA device; "
            "on a CPU run the same script at a tiny shape: --preset tiny --device cpu"
        )
    if args.json_path:  # before the run, so its figures cannot be lost for want of a folder
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)

    torch.backends.cuda.matmul.allow_tf32 = False  # float32 means float32 for the equality check
    torch.backends.cudnn.allow_tf32 = False
    t0 = time.perf_counter()
    model, tokenizer = build(args.preset, args.device, args.seed)
    figures: Dict = {
        "preset": args.preset,
        "device": args.device,
        "parameters": sum(p.numel() for p in model.parameters()),
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        "build_seconds": time.perf_counter() - t0,
    }
    print(
        f"built {args.preset}: {figures['parameters'] / 1e6:,.1f}M parameters in {figures['build_seconds']:.0f} s",
        flush=True,
    )
    figures["equality_float32"] = equality(model, tokenizer, args.equal_docs, args.equal_tokens, args.batch_size)
    e = figures["equality_float32"]
    print(
        f"float32: {e['equal']}/{e['queries']} engine answers equal generate's "
        f"({e['answer_tokens_mean']:.1f} tokens each; first difference: {e['first_difference']})",
        flush=True,
    )
    model.to(torch.bfloat16)
    rows = throughput(model, tokenizer, args.docs, args.answer_tokens, args.batch_size, args.repeats)
    figures["throughput_bfloat16"] = rows
    figures["docs"], figures["labels"], figures["answer_tokens"] = args.docs, 10, args.answer_tokens
    if args.device.startswith("cuda"):
        figures["peak_gpu_bytes"] = torch.cuda.max_memory_allocated()
    figures["total_seconds"] = time.perf_counter() - t0
    print(
        f"bfloat16, {args.docs} passages x 10 labels x {args.answer_tokens} tokens: "
        f"hf-batched {rows['hf-batched']['docs_per_s']:.2f} docs/s, engine {rows['engine']['docs_per_s']:.2f} docs/s "
        f"({rows['engine_over_hf_batched']:.1f}x); total {figures['total_seconds']:.0f} s",
        flush=True,
    )
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
