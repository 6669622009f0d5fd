"""vLLM backend: offline batched generation, prefix caching, tensor parallelism over several GPUs.

The path for users who outgrow one GPU (``tensor_parallel_size``) or want vLLM's throughput on
one. Settings follow the official UniNER evaluation, which ran on vLLM: the prompt string is
given to ``LLM.generate`` as is (vLLM's tokenizer adds BOS and reads the ``</s>`` text in the
prompt as the EOS token, exactly as in that evaluation), temperature 0, at most
``max_new_tokens`` tokens, stop at EOS. Prefix caching lets all label queries of a passage share
the passage's KV cache. A prompt whose passage or label holds special-token text (a literal ``</s>``)
is given as token ids instead (:func:`~.base.safe_prompts`), so the passage cannot end its own
turn and inject another.

vLLM is imported when the model is first needed, never by ``import spacy_universalner``; the
tokenizer for chunking comes from transformers without loading weights. Written against the
offline API that is stable from vLLM 0.5 to the current 0.x releases: ``LLM(...)``,
``SamplingParams(temperature, max_tokens, stop, logprobs, skip_special_tokens)``,
``LLM.generate(list_of_str, sampling_params, use_tqdm=...)`` and
``RequestOutput.outputs[0].text / .token_ids / .logprobs``.
"""

from typing import Any, Dict, List, Optional, Sequence

from ..pretrained import cache_key, load_tokenizer
from ..registry import uniner_backends
from ..types import BackendError, Generation, Query
from .offsets import offsets_from_strings
from .tokens import count_tokens_with, safe_prompts

DEFAULT_MODEL = "Universal-NER/UniNER-7B-type"
INSTALL_HINT = "pip install 'spacy-universalner[vllm]'"


class VLLMBackend:
    """Runs a causal LM with ``vllm.LLM``; one ``generate`` call per batch of queries."""

    def __init__(
        self,
        name: str = DEFAULT_MODEL,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        max_model_len: Optional[int] = None,
        enable_prefix_caching: bool = True,
        logprobs: bool = True,
        llm_kwargs: Optional[Dict[str, Any]] = None,
        tokenizer_kwargs: Optional[Dict[str, Any]] = None,
    ):
        if tensor_parallel_size < 1:
            raise ValueError(f"tensor_parallel_size must be at least 1, got {tensor_parallel_size}.")
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}.")
        self.name = name
        self.tensor_parallel_size = tensor_parallel_size
        self.dtype = dtype
        self.gpu_memory_utilization = gpu_memory_utilization
        self.max_model_len = max_model_len
        self.enable_prefix_caching = enable_prefix_caching
        self.logprobs = logprobs
        self.llm_kwargs = dict(llm_kwargs or {})
        self.tokenizer_kwargs = dict(tokenizer_kwargs or {})
        self._llm = None
        self._tokenizer = None

    @property
    def cache_key(self) -> str:
        """The response cache's key: the name, plus a weights fingerprint for a local folder."""
        return cache_key(self.name)

    # -- loading -----------------------------------------------------------------------------
    @staticmethod
    def _import_vllm():
        try:
            import vllm
        except ImportError as err:
            raise BackendError(
                f"The spacy_universalner.VLLM.v1 backend needs vLLM, which is not installed ({err}). "
                f"Install it with `{INSTALL_HINT}` on a Linux machine with a CUDA GPU, or use the "
                "spacy_universalner.HuggingFace.v1 backend."
            ) from err
        return vllm

    @property
    def llm(self):
        if self._llm is None:
            vllm = self._import_vllm()
            kwargs: Dict[str, Any] = {
                "model": self.name,
                "tensor_parallel_size": self.tensor_parallel_size,
                "dtype": self.dtype,
                "gpu_memory_utilization": self.gpu_memory_utilization,
                "enable_prefix_caching": self.enable_prefix_caching,
            }
            if self.max_model_len is not None:
                kwargs["max_model_len"] = self.max_model_len
            kwargs.update(self.llm_kwargs)
            try:
                self._llm = vllm.LLM(**kwargs)
            except Exception as err:
                raise BackendError(
                    f"vLLM could not start model {self.name!r} (tensor_parallel_size={self.tensor_parallel_size}, "
                    f"gpu_memory_utilization={self.gpu_memory_utilization}): {err}"
                ) from err
            self._tokenizer = None  # from now on, the engine's own tokenizer
        return self._llm

    @property
    def tokenizer(self):
        """The engine's tokenizer once it runs; before that a transformers tokenizer (no weights)."""
        if self._llm is not None:
            return self._llm.get_tokenizer()
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.name, **self.tokenizer_kwargs)
        return self._tokenizer

    @property
    def eos_text(self) -> Optional[str]:
        return self.tokenizer.eos_token

    def count_tokens(self, texts: Sequence[str]) -> List[int]:
        return count_tokens_with(self.tokenizer, texts)

    # -- generation --------------------------------------------------------------------------
    def sampling_params(self, max_new_tokens: int):
        """Greedy decoding as in the official evaluation, plus the chosen token's log-probability."""
        vllm = self._import_vllm()
        eos = self.eos_text
        return vllm.SamplingParams(
            n=1,
            temperature=0.0,
            max_tokens=max_new_tokens,
            stop=[eos] if eos else None,
            logprobs=1 if self.logprobs else None,
            skip_special_tokens=True,
        )

    def __call__(self, queries: Sequence[Query], max_new_tokens: int = 256) -> List[Generation]:
        if not queries:
            return []
        llm = self.llm
        params = self.sampling_params(max_new_tokens)
        prompts = [p if isinstance(p, str) else {"prompt_token_ids": p} for p in safe_prompts(self.tokenizer, queries)]
        outputs = llm.generate(prompts, params, use_tqdm=False)
        if len(outputs) != len(queries):
            raise BackendError(f"vLLM returned {len(outputs)} outputs for {len(queries)} prompts.")
        eos_id = getattr(self.tokenizer, "eos_token_id", None)
        return [self._generation(output.outputs[0], eos_id) for output in outputs]

    @staticmethod
    def _generation(completion: Any, eos_id: Optional[int]) -> Generation:
        """Text, and per-token log-probabilities without the final EOS (as the HF backend reports them)."""
        text = completion.text
        token_ids = list(completion.token_ids or [])
        logprobs = completion.logprobs
        if not logprobs or len(logprobs) != len(token_ids):
            return Generation(text)
        n = len(token_ids) - 1 if token_ids and token_ids[-1] == eos_id else len(token_ids)
        values, pieces = [], []
        for token_id, candidates in zip(token_ids[:n], logprobs):
            chosen = candidates[token_id]  # the sampled token is always among the returned ones
            values.append(float(chosen.logprob))
            pieces.append(getattr(chosen, "decoded_token", None))
        return Generation(text, token_logprobs=values, token_offsets=offsets_from_strings(text, pieces))


@uniner_backends("spacy_universalner.VLLM.v1")
def make_vllm_backend(
    name: str = DEFAULT_MODEL,
    tensor_parallel_size: int = 1,
    dtype: str = "auto",
    gpu_memory_utilization: float = 0.9,
    max_model_len: Optional[int] = None,
    enable_prefix_caching: bool = True,
    logprobs: bool = True,
    llm_kwargs: Dict[str, Any] = {},
    tokenizer_kwargs: Dict[str, Any] = {},
) -> VLLMBackend:
    """A model run by vLLM (``pip install 'spacy-universalner[vllm]'``); ``tensor_parallel_size``
    splits it over that many GPUs; ``llm_kwargs`` go to ``vllm.LLM`` (e.g. ``quantization``,
    ``pipeline_parallel_size``, ``enforce_eager``)."""
    return VLLMBackend(
        name,
        tensor_parallel_size,
        dtype,
        gpu_memory_utilization,
        max_model_len,
        enable_prefix_caching,
        logprobs,
        llm_kwargs,
        tokenizer_kwargs,
    )
