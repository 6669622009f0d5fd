"""A UniNER model behind an OpenAI-compatible *completions* endpoint (vLLM, TGI, llama.cpp server).

This is how inference scales past one machine: run the model on a fleet of servers behind a load
balancer and point ``base_url`` at it (or give several base URLs and queries are spread over
them). The exact UniNER prompt goes to ``{base_url}/completions`` (never the chat endpoint: a
chat template would change the prompt), decoded greedily (temperature 0) with at most
``max_new_tokens`` tokens and the EOS text as stop string, like the official vLLM evaluation.

All HTTP behaviour (API key from an environment variable, bounded concurrency, retries with
backoff on 429 / 5xx / timeouts, a clear error on 401/403, a whole-request deadline, no secret in
messages) is :mod:`spacy_universalner.http`'s, shared with the distillation teacher. A query that
fails for good does not lose the others: the backend raises :class:`~.base.PartialGenerations`
with every answer that arrived, and the component caches them before it reports the failure.

The server tokenizes the prompt string itself, and vLLM's and llama.cpp's servers read special-token
text in it (a literal ``</s>`` in a passage) as the special token; only the local backends, which
tokenize themselves, can keep a passage plain text (:func:`~.base.safe_prompts`).
"""

import math
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union

from ..confidence import logprob_value
from ..pretrained import load_tokenizer
from ..registry import uniner_backends
from ..types import BackendError, Generation, PartialGenerations, Query
from .offsets import offsets_from_strings
from .tokens import count_tokens_with

if TYPE_CHECKING:  # pragma: no cover
    from ..http import OpenAIClient

#: Where the API key is read from. Not OPENAI_API_KEY: a UniNER model is always self-hosted, and a
#: key meant for OpenAI should not be sent to whatever server ``base_url`` names. Unset: no key sent.
DEFAULT_API_KEY_ENV = "UNINER_API_KEY"

#: Characters per token assumed when no tokenizer is configured. LLaMA averages ~4 characters per
#: token on English; 3 over-counts, so chunks stay within the 256 tokens UniNER was trained on.
CHARS_PER_TOKEN_ESTIMATE = 3


def generation_from_choice(choice: Dict[str, Any]) -> Generation:
    """A :class:`Generation` from one ``choices[i]`` of a completions response.

    Token log-probabilities are read from the legacy completions format (``logprobs.tokens`` /
    ``logprobs.token_logprobs``) that vLLM and llama.cpp return when asked; anything else is ignored.
    """
    text = choice.get("text") or ""
    if not isinstance(text, str):
        raise BackendError(f"The completions server returned a non-text answer: {choice!r:.300}")
    logprobs = choice.get("logprobs")
    if not isinstance(logprobs, dict):
        return Generation(text)
    values = logprobs.get("token_logprobs")
    tokens = logprobs.get("tokens")
    if not isinstance(values, list):
        return Generation(text)
    read = [logprob_value(v) for v in values]
    if any(v is None for v in read):  # a number that is no log-probability: no confidences, never a crash
        return Generation(text)
    offsets = offsets_from_strings(text, tokens) if isinstance(tokens, list) and len(tokens) == len(values) else None
    return Generation(text, token_logprobs=read, token_offsets=offsets)  # type: ignore[arg-type]


class OpenAICompatibleBackend:
    """Greedy UniNER answers from one or more OpenAI-compatible servers, in query order."""

    def __init__(
        self,
        base_url: Union[str, Sequence[str]],
        model: str,
        *,
        api_key_env: Optional[str] = DEFAULT_API_KEY_ENV,
        max_concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 6,
        backoff_base: float = 1.0,
        eos_text: Optional[str] = "</s>",
        logprobs: bool = False,
        tokenizer: Optional[str] = None,
        extra_params: Optional[Dict[str, Any]] = None,
        client_kwargs: Optional[Dict[str, Any]] = None,
    ):
        from ..http import check_client_settings, has_credentials, redact_url

        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls or not all(isinstance(url, str) and url.strip() for url in urls):
            shown = [redact_url(url) if isinstance(url, str) else url for url in urls] if urls else base_url
            raise ValueError(
                f"base_url must be a URL such as 'http://localhost:8000/v1' or a list of them, got {shown!r}."
            )
        if any(has_credentials(url) for url in urls):
            # The config is saved with the pipeline (nlp.to_disk writes config.cfg) and shown in errors.
            raise ValueError(
                "base_url must not hold credentials (user:password@): they would be saved in the pipeline's "
                "config.cfg. Put the key in an environment variable and name it with api_key_env "
                f"(default {DEFAULT_API_KEY_ENV}); it is sent as 'Authorization: Bearer <key>'."
            )
        if not model:
            raise ValueError("model must be the model name the server serves (e.g. 'Universal-NER/UniNER-7B-type').")
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}.")
        for url in urls:  # the client's own checks, now rather than at the first request
            check_client_settings(url, timeout=timeout, max_retries=max_retries, backoff_base=backoff_base)
        self.base_urls = [url.rstrip("/") for url in urls]
        #: The response-cache key: the served model, whichever server answers.
        self.name = model
        self.api_key_env = api_key_env
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self._eos_text = eos_text
        self.logprobs = logprobs
        self.tokenizer_name = tokenizer
        self.extra_params = dict(extra_params or {})
        self.client_kwargs = dict(client_kwargs or {})
        self._clients: Optional[List["OpenAIClient"]] = None
        self._tokenizer = None

    # -- the shared HTTP client ------------------------------------------------------------------
    @property
    def clients(self) -> List["OpenAIClient"]:
        """One client per base URL, each running at most ``max_concurrency`` requests at a time."""
        if self._clients is None:
            from ..http import OpenAIClient

            self._clients = [
                OpenAIClient(
                    url,
                    self.name,
                    api_key_env=self.api_key_env,
                    timeout=self.timeout,
                    max_retries=self.max_retries,
                    backoff_base=self.backoff_base,
                    concurrency=self.max_concurrency,
                    **self.client_kwargs,
                )
                for url in self.base_urls
            ]
        return self._clients

    def request_params(self, max_new_tokens: int) -> Dict[str, Any]:
        """The body sent with every prompt: greedy, capped, stopping at the EOS text."""
        params: Dict[str, Any] = {"temperature": 0, "max_tokens": max_new_tokens, **self.extra_params}
        if self._eos_text:
            params["stop"] = [self._eos_text]
        if self.logprobs:
            params["logprobs"] = 1
        return params

    # -- the backend contract --------------------------------------------------------------------
    @property
    def eos_text(self) -> Optional[str]:
        return self._eos_text

    def count_tokens(self, texts: Sequence[str]) -> List[int]:
        """Model tokens per text: exact with ``tokenizer`` set, else a deliberate over-estimate."""
        if not texts:
            return []
        if self.tokenizer_name:
            if self._tokenizer is None:
                self._tokenizer = load_tokenizer(self.tokenizer_name)
            return count_tokens_with(self._tokenizer, texts)
        return [math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE) for text in texts]

    def __call__(self, queries: Sequence[Query], max_new_tokens: int = 256) -> List[Generation]:
        from ..http import HTTPClientError, PartialFailure

        prompts = [query.prompt for query in queries]
        if not prompts:
            return []
        params = self.request_params(max_new_tokens)
        clients = self.clients
        # Query i goes to server i mod n; each server's share keeps its order.
        shares = [list(range(k, len(prompts), len(clients))) for k in range(len(clients))]
        work = [(client, share) for client, share in zip(clients, shares) if share]

        def ask(client: "OpenAIClient", share: List[int]) -> List[Any]:
            """One server's answers in its share's order, ``None`` where a query failed for good."""
            try:
                return client.complete_responses([prompts[i] for i in share], **params)
            except PartialFailure as err:
                errors.append(err)
                return err.results
            except HTTPClientError as err:  # every query of this server failed
                errors.append(err)
                return [None] * len(share)

        errors: List[Exception] = []
        if len(work) == 1:
            answered = [ask(*work[0])]
        else:
            with ThreadPoolExecutor(max_workers=len(work)) as pool:
                answered = list(pool.map(lambda item: ask(*item), work))
        results: List[Optional[Generation]] = [None] * len(prompts)
        for (_, share), responses in zip(work, answered):
            for i, response in zip(share, responses):
                if response is None:
                    continue
                try:
                    results[i] = generation_from_choice(response["choices"][0])
                except BackendError as err:
                    errors.append(err)
        if not errors:
            return results  # type: ignore[return-value]
        message = f"The completions server could not answer for model {self.name!r}: {errors[0]}"
        if all(result is None for result in results):
            raise BackendError(message) from errors[0]
        failed = sum(result is None for result in results)
        raise PartialGenerations(f"{message} ({failed} of {len(prompts)} queries failed)", results) from errors[0]


@uniner_backends("spacy_universalner.OpenAICompatible.v1")
def make_openai_compatible_backend(
    base_url: Union[str, List[str]],
    model: str,
    api_key_env: Optional[str] = DEFAULT_API_KEY_ENV,
    max_concurrency: int = 8,
    timeout: float = 60.0,
    max_retries: int = 6,
    backoff_base: float = 1.0,
    eos_text: Optional[str] = "</s>",
    logprobs: bool = False,
    tokenizer: Optional[str] = None,
    extra_params: Dict[str, Any] = {},
) -> OpenAICompatibleBackend:
    """A UniNER model served over HTTP. ``model`` is the served name (also the response-cache key);
    ``max_concurrency`` bounds in-flight requests per base URL; ``tokenizer`` (hub id or folder)
    makes chunking exact; ``extra_params`` are added to every request body."""
    return OpenAICompatibleBackend(
        base_url,
        model,
        api_key_env=api_key_env,
        max_concurrency=max_concurrency,
        timeout=timeout,
        max_retries=max_retries,
        backoff_base=backoff_base,
        eos_text=eos_text,
        logprobs=logprobs,
        tokenizer=tokenizer,
        extra_params=extra_params,
    )
