"""Hugging Face transformers backend: greedy, batched, left-padded generation.

Two engines give the same greedy tokens: ``"shared_prefix"`` (default, :mod:`.engine`) prefills
each chunk's passage once for all its labels, decodes all queries of a batch together and drops
finished ones; ``"generate"`` is plain batched ``model.generate``. ``constrained=True`` (shared
prefix engine only; :mod:`.constrained`) restricts answers to JSON lists of passage substrings.

torch and transformers are imported on first use, the tokenizer separately from the model, so
chunking long Docs never loads the weights and a fully cached run loads nothing.
"""

import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..pretrained import cache_key, load_pretrained, load_tokenizer, position_limit
from ..registry import uniner_backends
from ..types import BackendError, Dtype, Engine, Generation, Query, check_choice, renamed_setting
from .tokens import count_tokens_with, encode_prompts

DEFAULT_MODEL = "Universal-NER/UniNER-7B-type"
_DEVICE = re.compile(r"(auto|cpu|mps|meta|(cuda|xpu|npu|hpu)(:\d+)?)")


def check_device(device: str) -> None:
    """Refuse, when the backend is built, a device torch does not know or a GPU torch cannot see.

    Otherwise the error would come at the first Doc, after the pipeline was built (or from deep in
    torch). torch is imported only for a ``cuda`` device, to ask whether CUDA is there.
    """
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise ValueError(f"Unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'.")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was asked for, but torch sees no CUDA device: use 'cpu' or 'auto'.")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was asked for, but torch sees {torch.cuda.device_count()} CUDA device(s)."
            )


class HuggingFaceBackend:
    """Runs a causal LM from the hub or a local folder with ``generate``."""

    def __init__(
        self,
        name: str = DEFAULT_MODEL,
        device: str = "auto",
        dtype: Dtype = "auto",
        queries_per_batch: int = 64,
        model_kwargs: Optional[Dict[str, Any]] = None,
        tokenizer_kwargs: Optional[Dict[str, Any]] = None,
        engine: Engine = "shared_prefix",
        constrained: bool = False,
        stop_at_list_end: bool = True,
    ):
        check_choice("engine", engine, Engine)
        if constrained and engine != "shared_prefix":
            raise ValueError('constrained=True needs engine="shared_prefix".')
        check_choice("dtype", dtype, Dtype)
        if queries_per_batch < 1:
            raise ValueError(f"queries_per_batch must be at least 1, got {queries_per_batch}.")
        check_device(device)
        self.name = name
        self.device_name = device
        self.dtype_name = dtype
        self.queries_per_batch = queries_per_batch
        self.model_kwargs = dict(model_kwargs or {})
        self.tokenizer_kwargs = dict(tokenizer_kwargs or {})
        self.engine = engine
        self.constrained = constrained
        self.stop_at_list_end = stop_at_list_end
        self._tokenizer = None
        self._model = None
        self._engine = None

    @property
    def cache_key(self) -> str:
        """The response cache's key: the name, plus a weights fingerprint for a local folder."""
        return cache_key(self.name)

    # -- loading -----------------------------------------------------------------------------
    @property
    def loaded(self) -> Tuple[str, ...]:
        """What is in memory so far: ``"tokenizer"``, ``"model"`` (both load lazily, on first use)."""
        return tuple(
            part for part, value in (("tokenizer", self._tokenizer), ("model", self._model)) if value is not None
        )

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            tokenizer = load_tokenizer(self.name, **self.tokenizer_kwargs)
            tokenizer.padding_side = "left"
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
            self._tokenizer = tokenizer
        return self._tokenizer

    @property
    def device(self):
        import torch

        if self.device_name == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(self.device_name)
        except RuntimeError as err:
            raise ValueError(f"Unknown device {self.device_name!r}: use 'cpu', 'cuda', 'cuda:1' or 'auto'.") from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BackendError(f"device={self.device_name!r} was asked for, but torch sees no CUDA device.")
        return device

    def _torch_dtype(self, device):
        import torch

        if self.dtype_name != "auto":
            return getattr(torch, self.dtype_name)
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32

    @property
    def model(self):
        if self._model is None:
            from transformers import AutoModelForCausalLM

            device = self.device
            kwargs = {"dtype": self._torch_dtype(device), **self.model_kwargs}
            model = load_pretrained(AutoModelForCausalLM.from_pretrained, self.name, "weights", **kwargs)
            if "device_map" not in self.model_kwargs:
                model.to(device)
            model.eval()
            self._model = model
        return self._model

    @property
    def eos_text(self) -> Optional[str]:
        return self.tokenizer.eos_token

    def count_tokens(self, texts: Sequence[str]) -> List[int]:
        return count_tokens_with(self.tokenizer, texts)

    # -- generation --------------------------------------------------------------------------
    def __call__(self, queries: Sequence[Query], max_new_tokens: int = 256) -> List[Generation]:
        import torch

        try:
            return self._run(queries, max_new_tokens)
        except torch.cuda.OutOfMemoryError as err:  # torch.OutOfMemoryError in torch >= 2.5
            raise BackendError(
                f"Out of memory generating with model {self.name!r}, {self.queries_per_batch} queries at a time: "
                "lower the backend's `queries_per_batch` (each query holds its own KV cache, about 0.5 MB per token "
                f"for a 7B LLaMA in bfloat16), or `max_new_tokens`. ({err})"
            ) from err

    @property
    def max_positions(self) -> Optional[int]:
        """The model's position limit (prompt + answer), from its config; None if it has none."""
        return position_limit(self.model.config)

    def _fit_context(self, queries: Sequence[Query], max_new_tokens: int) -> int:
        """``max_new_tokens``, lowered so the longest prompt plus its answer fits the model's positions.

        A model with learned absolute positions (a BERT-based student from ``init-student``: 512) fails deep in
        torch past its limit, so the answer length is capped instead, and a prompt that alone does
        not fit is an error naming the setting to change. UniNER-7B (2,048 positions) never reaches it
        with the default 256-token chunks.
        """
        limit = self.max_positions
        if not limit or not queries:
            return max_new_tokens
        longest = max(len(ids) for ids in encode_prompts(self.tokenizer, queries))
        if longest >= limit:
            raise BackendError(
                f"A prompt of {longest} tokens does not fit model {self.name!r}, which has {limit} positions: "
                f"lower the component's `max_chunk_tokens` (passages are split to that many tokens)."
            )
        return min(max_new_tokens, limit - longest)

    def _run(self, queries: Sequence[Query], max_new_tokens: int) -> List[Generation]:
        max_new_tokens = self._fit_context(queries, max_new_tokens)
        if self.engine == "shared_prefix":
            return self.shared_prefix_engine(queries, max_new_tokens)
        encoded = encode_prompts(self.tokenizer, queries)
        results: List[Optional[Generation]] = [None] * len(encoded)
        # Similar lengths together: less padding, same greedy output.
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), self.queries_per_batch):
            batch = order[start : start + self.queries_per_batch]
            for i, generation in zip(batch, self._generate([encoded[i] for i in batch], max_new_tokens)):
                results[i] = generation
        return results  # type: ignore[return-value]

    @property
    def shared_prefix_engine(self):
        """The :class:`~.engine.SharedPrefixEngine` over this backend's model (built on first use)."""
        if self._engine is None:
            from .engine import SharedPrefixEngine

            constraint = None
            if self.constrained:
                from .constrained import ConstraintFactory

                constraint = ConstraintFactory(self.tokenizer, self.model.config.get_text_config().vocab_size)
            self._engine = SharedPrefixEngine(
                self.model,
                self.tokenizer,
                batch_size=self.queries_per_batch,
                stop_at_list_end=self.stop_at_list_end,
                constraint=constraint,
            )
        return self._engine

    def _generate(self, rows: List[List[int]], max_new_tokens: int) -> List[Generation]:
        """Batched ``generate`` over prompts given as token ids (:func:`~.base.encode_prompts`), left-padded."""
        import torch

        from .offsets import offsets_from_ids

        tokenizer, model = self.tokenizer, self.model
        width = max(len(row) for row in rows)
        input_ids = torch.tensor(
            [[tokenizer.pad_token_id] * (width - len(row)) + row for row in rows], device=model.device
        )
        attention_mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows], device=model.device)
        with torch.inference_mode():
            output = model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                do_sample=False,
                max_new_tokens=max_new_tokens,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                return_dict_in_generate=True,
                output_scores=True,
            )
            logprobs = model.compute_transition_scores(output.sequences, output.scores, normalize_logits=True)
        new_tokens = output.sequences[:, width:]
        generations = []
        for ids, scores in zip(new_tokens.tolist(), logprobs.tolist()):
            # Cut at the first EOS: sequences that finished early are padded afterwards.
            n = ids.index(tokenizer.eos_token_id) if tokenizer.eos_token_id in ids else len(ids)
            text = tokenizer.decode(ids[:n], skip_special_tokens=True)
            generations.append(
                Generation(
                    text=text, token_logprobs=scores[:n], token_offsets=offsets_from_ids(tokenizer, ids[:n], text)
                )
            )
        return generations


@uniner_backends("spacy_universalner.HuggingFace.v1")
def make_huggingface_backend(
    name: str = DEFAULT_MODEL,
    device: str = "auto",
    dtype: Dtype = "auto",
    queries_per_batch: int = 64,
    model_kwargs: Dict[str, Any] = {},
    tokenizer_kwargs: Dict[str, Any] = {},
    engine: Engine = "shared_prefix",
    constrained: bool = False,
    stop_at_list_end: bool = True,
    batch_size: Optional[int] = None,
) -> HuggingFaceBackend:
    """A local or hub causal LM run with transformers. ``queries_per_batch``: queries decoded together
    (``batch_size``, its old name, still works with a warning; the component's ``batch_size`` counts Docs).

    ``engine``: "shared_prefix" (one passage prefill per chunk, same greedy tokens) or "generate".
    ``constrained``: only JSON lists of passage substrings (off by default: faithful decoding).
    ``stop_at_list_end``: stop a query once the official parser has its list (the answer is unchanged).
    """
    if batch_size is not None:
        queries_per_batch = renamed_setting("batch_size", "queries_per_batch", batch_size)
    return HuggingFaceBackend(
        name, device, dtype, queries_per_batch, model_kwargs, tokenizer_kwargs, engine, constrained, stop_at_list_end
    )
