"""``train``: fine-tune a causal LM on UniNER conversations (the paper's recipe, section 5).

Prompts are built by :class:`~spacy_universalner.prompt.UniNERTemplate` (with the tokenizer's
own EOS text as separator), the same code the ``universal_ner`` component uses at inference.
Each conversation is tokenised once, with character offsets; a token is a training target when
it starts inside an assistant turn (``" I've read this text.</s>"``, ``" [...]</s>"``), so system
text, user turns and padding are masked out (-100) and the prompt tokens are exactly those that
inference tokenises. Training runs on transformers' ``Trainer``: bf16/fp16 where the hardware
has it, gradient checkpointing, LoRA through peft (merged before saving), and FSDP when launched
with ``accelerate launch`` (see ``configs/distill-accelerate-fsdp.yaml``).
"""

import inspect
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, Union

from ..conversations import load_conversations, read_conversation
from ..prompt import UniNERTemplate

# TrainConfigError and load_train_config are imported from here too (their home before config.py).
from .config import ConfigSchema, TrainConfigError, as_config, load_train_config  # noqa: F401

logger = logging.getLogger(__name__)
IGNORE = -100


def encode_conversation(
    tokenizer, template: UniNERTemplate, text: str, pairs: Sequence[Tuple[str, str]], max_length: int = 1024
) -> Dict[str, List[int]]:
    """Token ids and labels for one conversation: labels are -100 outside assistant turns."""
    segments = template.training_segments(text, pairs)
    targets: List[Tuple[int, int]] = []
    position = 0
    for piece, is_target in segments:
        if is_target:
            targets.append((position, position + len(piece)))
        position += len(piece)
    conversation = "".join(piece for piece, _ in segments)
    encoded = tokenizer(
        conversation, return_offsets_mapping=True, truncation=True, max_length=max_length, add_special_tokens=True
    )
    labels = []
    for token_id, (start, end) in zip(encoded["input_ids"], encoded["offset_mapping"]):
        inside = end > start and any(lo <= start < hi for lo, hi in targets)
        labels.append(token_id if inside else IGNORE)
    return {"input_ids": list(encoded["input_ids"]), "labels": labels}


class PadCollator:
    """Right-pads a batch; padding is masked in ``attention_mask`` and ignored in ``labels``."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: List[Dict[str, List[int]]]) -> Dict[str, Any]:
        import torch

        length = max(len(f["input_ids"]) for f in features)
        input_ids, labels, attention = [], [], []
        for f in features:
            pad = length - len(f["input_ids"])
            input_ids.append(f["input_ids"] + [self.pad_token_id] * pad)
            labels.append(f["labels"] + [IGNORE] * pad)
            attention.append([1] * len(f["input_ids"]) + [0] * pad)
        return {
            "input_ids": torch.tensor(input_ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(attention),
        }


# -- the schema of `train` (spacy_universalner/configs/train.cfg writes these defaults out) ---------------
@dataclass(frozen=True)
class ModelSettings:
    """``[model]``: the causal LM to fine-tune."""

    #: Hub id or local path; ``--base-model`` overrides it. The paper used LLaMA-7B.
    base: str = "huggyllama/llama-7b"
    gradient_checkpointing: bool = True
    #: Every dropout rate of the model set to this; null: the model's own.
    dropout: Optional[float] = None


@dataclass(frozen=True)
class LoraSettings:
    """``[lora]``: LoRA adapters through peft (merged on save) instead of full fine-tuning."""

    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    #: null: peft's default modules for the architecture; or e.g. "all-linear", or a list of module names.
    target_modules: Optional[Union[str, List[str]]] = None


@dataclass(frozen=True)
class TrainingSettings:
    """``[training]``: the optimisation (turned into transformers' ``TrainingArguments`` by
    :func:`training_arguments`; ``precision``, ``progress``, ``max_length`` and the FSDP keys are ours)."""

    epochs: float = 3
    learning_rate: float = 2e-5
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.04
    weight_decay: float = 0.0
    max_length: int = 1024
    per_device_batch_size: int = 4
    gradient_accumulation_steps: int = 64
    #: -1: train for ``epochs``; a positive number stops after that many optimizer steps.
    max_steps: int = -1
    group_by_length: bool = False
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    seed: int = 0
    #: A number below 1 is a ratio of the total steps (as in transformers).
    logging_steps: float = 10
    save_strategy: Literal["no", "steps", "epoch", "best"] = "steps"
    save_steps: float = 200
    save_total_limit: Optional[int] = 2
    report_to: Union[str, List[str]] = "none"
    progress: bool = True
    fsdp: str = ""
    fsdp_layer_class: str = "LlamaDecoderLayer"


@dataclass(frozen=True)
class TrainConfig(ConfigSchema):
    """The ``train`` config, validated: ``TrainConfig.load(path)`` or ``TrainConfig.from_config(a_dict)``."""

    what = "train"

    model: ModelSettings = field(default_factory=ModelSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)


def _precision(setting: str) -> Tuple[bool, bool]:
    """``(bf16, fp16)``: "auto" picks bf16 where the GPU has it, else fp16 on GPU, else float32."""
    import torch

    if setting == "auto":
        if torch.cuda.is_available():
            return (True, False) if torch.cuda.is_bf16_supported() else (False, True)
        return False, False
    if setting not in ("bf16", "fp16", "fp32"):
        raise ValueError(f"precision must be auto, bf16, fp16 or fp32, not {setting!r}")
    return setting == "bf16", setting == "fp16"


def _fit_max_length(base: str, config, max_length: int) -> int:
    """``max_length``, lowered to the model's positions (learned absolute positions fail past them)."""
    from ..pretrained import position_limit

    positions = position_limit(config)
    if positions and max_length > positions:
        logger.warning(
            "max_length %d is more than %s has positions; conversations are cut at %d tokens",
            max_length,
            base,
            positions,
        )
        return positions
    return max_length


def dropout_overrides(config, dropout: Optional[float]) -> Dict[str, float]:
    """Overrides setting every dropout rate in a transformers ``config`` to ``dropout`` (None: keep the model's).

    Names differ per architecture (``hidden_dropout_prob``, ``attention_dropout``, ``resid_pdrop``...),
    hence the search over the config's float settings.
    """
    if dropout is None:
        return {}
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"model.dropout must be in [0, 1), got {dropout!r}")
    names = [k for k, v in config.to_dict().items() if isinstance(v, float) and ("dropout" in k or k.endswith("pdrop"))]
    return {name: float(dropout) for name in names}


def missing_requirements(lora: bool = False) -> Optional[str]:
    """What training lacks (an optional package missing or too old, and the extra that brings it), or None.

    transformers' Trainer needs accelerate and only says so deep in a traceback; checked first, the
    user gets one line naming the extra to install.
    """
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version
    from transformers.utils import import_utils

    needed = {"accelerate": getattr(import_utils, "ACCELERATE_MIN_VERSION", "0.26.0")}
    if lora:
        needed["peft"] = "0.10"
    problems = []
    for package, minimum in needed.items():
        try:
            installed = version(package)
        except PackageNotFoundError:
            problems.append(f"{package}>={minimum} (not installed)")
            continue
        if Version(installed) < Version(minimum):
            problems.append(f"{package}>={minimum} (installed: {installed})")
    if not problems:
        return None
    return (
        f"Training needs {' and '.join(problems)}: install the [train] extra, "
        'pip install -e ".[train]" in a checkout (or pip install "spacy-universalner[train]").'
    )


def run_train(
    data_path: Union[str, Path],
    output: Union[str, Path],
    config: Union[Mapping[str, Any], TrainConfig],
    *,
    base_model: Optional[str] = None,
    resume: bool = False,
) -> Dict[str, Any]:
    """Train and save the student (``save_pretrained``: model + tokenizer) to ``output``.

    ``config`` is validated first (:meth:`TrainConfig.from_config`), before anything is loaded.
    """
    settings = TrainConfig.from_config(config)
    import torch
    from transformers import AutoConfig, Trainer, TrainingArguments

    from ..pretrained import load_pretrained, load_tokenizer

    model_cfg, lora_cfg, train_cfg = settings.model, settings.lora, settings.training
    base = base_model or model_cfg.base
    output = Path(output)
    # Through the package's loader: offline, a hub id fails at once in one message (not a minute of retries).
    tokenizer = load_tokenizer(base)
    if tokenizer.eos_token is None:
        raise ValueError(f"The tokenizer of {base} has no EOS token; UniNER's template needs one.")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    template = UniNERTemplate(separator=tokenizer.eos_token)
    records = load_conversations(data_path)
    base_config = load_pretrained(AutoConfig.from_pretrained, base, "config")
    max_length = _fit_max_length(base, base_config, train_cfg.max_length)
    dataset = [encode_conversation(tokenizer, template, *read_conversation(r), max_length=max_length) for r in records]
    target_tokens = sum(sum(1 for label in d["labels"] if label != IGNORE) for d in dataset)
    logger.info("%d conversations, %d target tokens", len(dataset), target_tokens)

    bf16, fp16 = _precision(train_cfg.precision)
    torch.manual_seed(train_cfg.seed)
    model = _load_student(base, base_config, model_cfg, lora_cfg, bf16)
    trainer = Trainer(
        model=model,
        args=TrainingArguments(**training_arguments(output, model_cfg, train_cfg, bf16, fp16)),
        train_dataset=dataset,
        data_collator=PadCollator(pad_id),
        processing_class=tokenizer,
    )
    has_checkpoint = resume and any((output / "checkpoints").glob("checkpoint-*"))
    result = trainer.train(resume_from_checkpoint=True if has_checkpoint else None)
    summary = {
        "base_model": base,
        "conversations": len(dataset),
        "target_tokens": target_tokens,
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "template_separator": template.separator,
        "lora": lora_cfg.enabled,
        "precision": "bf16" if bf16 else "fp16" if fp16 else "fp32",
    }
    _save_student(
        trainer,
        tokenizer,
        output,
        pad_id,
        merge_lora=lora_cfg.enabled,
        record={"summary": summary, "config": as_config(settings)},
    )
    return summary


def _load_student(base: str, base_config, model_cfg: ModelSettings, lora_cfg: LoraSettings, bf16: bool):
    """The base causal LM to fine-tune, with LoRA adapters where ``[lora] enabled``."""
    import torch
    from transformers import AutoModelForCausalLM

    from ..pretrained import load_pretrained

    # bf16 on a GPU loads the weights in bfloat16 (memory, as the paper's FSDP runs); on a CPU the weights
    # stay float32 and only the matmuls are autocast to bfloat16 (AdamW on bfloat16 weights loses small updates).
    model = load_pretrained(
        AutoModelForCausalLM.from_pretrained,
        base,
        "weights",
        dtype=torch.bfloat16 if bf16 and torch.cuda.is_available() else torch.float32,
        **dropout_overrides(base_config, model_cfg.dropout),
    )
    if model_cfg.gradient_checkpointing:
        model.config.use_cache = False
    if lora_cfg.enabled:
        from peft import LoraConfig, get_peft_model

        targets = lora_cfg.target_modules or None
        model = get_peft_model(
            model,
            LoraConfig(
                r=lora_cfg.r,
                lora_alpha=lora_cfg.alpha,
                lora_dropout=lora_cfg.dropout,
                target_modules=targets,
                task_type="CAUSAL_LM",
            ),
        )
        if model_cfg.gradient_checkpointing:
            model.enable_input_require_grads()
    return model


def training_arguments(
    output: Path, model_cfg: ModelSettings, train_cfg: TrainingSettings, bf16: bool, fp16: bool
) -> Dict[str, Any]:
    """``TrainingArguments`` keywords for the ``[training]`` block, across transformers 4 and 5."""
    import torch
    from transformers import TrainingArguments

    params = set(inspect.signature(TrainingArguments.__init__).parameters)
    arguments: Dict[str, Any] = dict(
        output_dir=str(output / "checkpoints"),
        num_train_epochs=train_cfg.epochs,
        max_steps=train_cfg.max_steps,
        learning_rate=train_cfg.learning_rate,
        lr_scheduler_type=train_cfg.lr_scheduler,
        weight_decay=train_cfg.weight_decay,
        per_device_train_batch_size=train_cfg.per_device_batch_size,
        gradient_accumulation_steps=train_cfg.gradient_accumulation_steps,
        bf16=bf16,
        fp16=fp16,
        logging_steps=train_cfg.logging_steps,
        save_strategy=train_cfg.save_strategy,
        save_steps=train_cfg.save_steps,
        save_total_limit=train_cfg.save_total_limit,
        seed=train_cfg.seed,
        report_to=train_cfg.report_to,
        remove_unused_columns=False,
        dataloader_pin_memory=torch.cuda.is_available(),
        disable_tqdm=not train_cfg.progress,
        # Without a GPU, transformers refuses bf16 unless told the run is on the CPU (autocast is then CPU autocast).
        use_cpu=not torch.cuda.is_available(),
    )
    # Batches of similar lengths waste less compute on padding (transformers 5: train_sampling_strategy).
    if train_cfg.group_by_length:
        if "train_sampling_strategy" in params:
            arguments["train_sampling_strategy"] = "group_by_length"
        else:
            arguments["group_by_length"] = True
    # transformers 5 renames gradient_checkpointing and folds warmup_ratio into warmup_steps.
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in params else "gradient_checkpointing"
    arguments[checkpointing] = model_cfg.gradient_checkpointing
    # A float warmup_steps below 1 is a ratio of the total steps.
    if "warmup_ratio" in params:
        arguments["warmup_ratio"] = train_cfg.warmup_ratio
    else:
        arguments["warmup_steps"] = train_cfg.warmup_ratio
    if train_cfg.fsdp:
        arguments["fsdp"] = train_cfg.fsdp
        arguments["fsdp_config"] = {"transformer_layer_cls_to_wrap": [train_cfg.fsdp_layer_class]}
    return arguments


def _save_student(trainer, tokenizer, output: Path, pad_id: int, merge_lora: bool, record: Dict[str, Any]) -> None:
    """Write the trained student (LoRA merged) as a causal LM folder with its tokenizer and ``uniner_training.json``."""
    model = trainer.model
    if merge_lora:
        model = model.merge_and_unload()  # a plain causal LM, loadable without peft
    if trainer.is_world_process_zero():
        model.config.use_cache = True
        if model.generation_config is not None and model.generation_config.pad_token_id is None:
            model.generation_config.pad_token_id = pad_id
    trainer.accelerator.wait_for_everyone()
    if trainer.is_fsdp_enabled:
        trainer.save_model(str(output))  # gathers the sharded weights
    elif trainer.is_world_process_zero():
        model.save_pretrained(output)
    if trainer.is_world_process_zero():
        if (output / "checkpoints").is_dir() and not any((output / "checkpoints").iterdir()):
            (output / "checkpoints").rmdir()
        tokenizer.save_pretrained(output)
        (output / "uniner_training.json").write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf8")
