"""Tiny LLaMA-shaped models built locally, for tests, benchmarks and smoke runs.

Nothing is downloaded: the tokenizer is a byte-level BPE trained in a second on built-in text
(any Unicode input stays encodable), the weights are random (seeded). Special tokens follow
LLaMA: ``<unk>`` 0 (also padding, as in UniNER), ``<s>`` 1, ``</s>`` 2, so the default
template's ``</s>`` separator is the tokenizer's EOS text.
"""
from pathlib import Path
from typing import Iterable, Optional, Union

_CORPUS = [
    "A virtual assistant answers questions from a user based on the provided text.",
    "USER: Text: Bill Gates founded Microsoft in Albuquerque. ASSISTANT: I've read this text.",
    "USER: What describes person in the text? ASSISTANT: [\"Bill Gates\"]",
    "What describes organization in the text? [\"Microsoft\"] What describes location in the text? []",
    "Guido van Rossum created Python while at CWI in Amsterdam, the Netherlands.",
    "Barack Obama visited Paris in 2015 and met the president of France at the Elysee Palace.",
    "The company announced on Monday that its quarterly revenue rose by 12 percent to 3.4 billion dollars.",
    "Researchers at the University of Cambridge published a paper on protein folding in Nature.",
    "The film was directed by Steven Spielberg and stars Tom Hanks as a lawyer in New York.",
    "Aspirin reduces the risk of heart attack; ibuprofen treats inflammation and fever.",
    "She played the guitar and the piano in a jazz band that toured Europe and Japan.",
    "Given a passage, your task is to extract all entities and identify their entity types.",
    "programming language, algorithm, conference, researcher, country, event, award, song, album",
]


def build_tokenizer(vocab_size: int = 512, extra_text: Optional[Iterable[str]] = None):
    """A ``PreTrainedTokenizerFast`` with LLaMA's special tokens, trained on built-in text."""
    from .distill.student import train_tokenizer

    return train_tokenizer(list(_CORPUS) + list(extra_text or []), vocab_size)


def build_tiny_llama(
    path: Union[str, Path],
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: Optional[int] = None,
    intermediate_size: Optional[int] = None,
    vocab_size: int = 512,
    seed: int = 0,
) -> Path:
    """Write a random-weight LLaMA-shaped causal LM and its tokenizer to ``path``; return the path.

    Defaults give a ~0.1M-parameter model that generates in milliseconds on a CPU;
    ``hidden_size=512, num_layers=8`` gives ~25M parameters for benchmarks.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tokenizer = build_tokenizer(vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads or num_heads,
        max_position_embeddings=2048,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = 0
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_gliner(path: Union[str, Path], *, hidden_size: int = 32, num_layers: int = 2, seed: int = 0) -> Path:
    """Write a random-weight GLiNER span model (a tiny BERT encoder with a WordPiece vocabulary made from
    the built-in text) to ``path`` with ``save_pretrained``; return the path. Needs the ``gliner`` package."""
    import re

    import torch
    from gliner import GLiNER, GLiNERConfig
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = Path(path)
    encoder = path.parent / f"{path.name}-encoder"
    encoder.mkdir(parents=True, exist_ok=True)
    words = sorted({w for line in _CORPUS for w in re.findall(r"\w+|[^\w\s]", line.lower())})
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (encoder / "vocab.txt").write_text("\n".join(specials + words) + "\n", encoding="utf8")
    tokenizer = BertTokenizerFast(vocab_file=str(encoder / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(encoder)
    torch.manual_seed(seed)
    BertModel(BertConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=2,
        intermediate_size=hidden_size * 2, max_position_embeddings=512,
    )).save_pretrained(encoder)
    torch.manual_seed(seed)
    model = GLiNER.from_config(GLiNERConfig(model_name=str(encoder), hidden_size=hidden_size, max_width=4, dropout=0.0))
    model.save_pretrained(str(path))
    return path
