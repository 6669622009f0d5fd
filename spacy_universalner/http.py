"""One client for OpenAI-compatible servers (OpenAI, vLLM, llama.cpp, TGI, ...).

Used by the distillation teacher (``chat``) and by the completions inference backend
(``complete``), so both share one behaviour for keys, retries and concurrency:

- the API key is read from an environment variable whose *name* is configured (optional: local
  servers usually need none);
- 429, 5xx, timeouts, dropped connections and unreadable response bodies are retried with
  exponential backoff and jitter, honouring ``Retry-After``;
- 401/403 stop at once with :class:`AuthenticationError` naming the variable to fix;
- other 4xx (a bad request will not get better) raise :class:`ClientError` at once;
- ``chat_many`` / ``complete_many`` run at most ``concurrency`` requests at a time.
"""
import email.utils
import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import requests

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429})


class HTTPClientError(RuntimeError):
    """A request failed for good; the message says why."""


class AuthenticationError(HTTPClientError):
    """The server refused the credentials (401/403): retrying cannot help."""


class ClientError(HTTPClientError):
    """The server rejected the request (4xx other than auth and rate limits)."""


class RetriesExhausted(HTTPClientError):
    """Transient failures (rate limits, 5xx, timeouts) outlasted every retry."""


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: Optional[float] = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAIClient:
    """Chat and text completions against ``{base_url}/chat/completions`` and ``{base_url}/completions``.

    ``base_url`` is the API root including the version, e.g. ``https://api.openai.com/v1`` or
    ``http://localhost:8000/v1``. ``params`` are sent with every request (``temperature``,
    ``max_tokens``...); per-call keyword arguments override them.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: Optional[str] = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 6,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        concurrency: int = 8,
        params: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env or None
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.concurrency = concurrency
        self.params: Dict[str, Any] = dict(params or {})
        self._headers = {"Content-Type": "application/json", **dict(headers or {})}
        api_key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._has_key = bool(api_key)
        self._sleep = sleep
        self._local = threading.local()
        self.requests_sent = 0
        self._count_lock = threading.Lock()

    # ------------------------------------------------------------------ public API
    def chat(self, messages: Sequence[Mapping[str, str]], **params: Any) -> str:
        """The assistant message's text for one conversation."""
        data = self.chat_response(messages, **params)
        try:
            return data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as err:  # pragma: no cover - checked in _post
            raise HTTPClientError(f"Unexpected chat response: {data!r:.300}") from err

    def chat_response(self, messages: Sequence[Mapping[str, str]], **params: Any) -> Dict[str, Any]:
        """The full JSON response of ``/chat/completions``."""
        payload = {"model": self.model, "messages": list(messages), **self.params, **params}
        return self._post("chat/completions", payload, lambda d: d["choices"][0]["message"])

    def complete(self, prompt: str, **params: Any) -> str:
        """The generated text for one raw prompt (no chat template applied by the server)."""
        return self.complete_response(prompt, **params)["choices"][0]["text"] or ""

    def complete_response(self, prompt: str, **params: Any) -> Dict[str, Any]:
        """The full JSON response of ``/completions`` (``logprobs`` included when asked for)."""
        payload = {"model": self.model, "prompt": prompt, **self.params, **params}
        return self._post("completions", payload, lambda d: d["choices"][0]["text"])

    def chat_many(self, conversations: Sequence[Sequence[Mapping[str, str]]], **params: Any) -> List[str]:
        """``chat`` for each conversation, at most ``concurrency`` at a time; results in input order."""
        return self._map(lambda messages: self.chat(messages, **params), conversations)

    def complete_many(self, prompts: Sequence[str], **params: Any) -> List[str]:
        """``complete`` for each prompt, at most ``concurrency`` at a time; results in input order."""
        return self._map(lambda prompt: self.complete(prompt, **params), prompts)

    def complete_responses(self, prompts: Sequence[str], **params: Any) -> List[Dict[str, Any]]:
        """``complete_response`` for each prompt (full JSON, e.g. with ``logprobs``), ``concurrency`` at a time, in order."""
        return self._map(lambda prompt: self.complete_response(prompt, **params), prompts)  # type: ignore[arg-type, return-value]

    # ------------------------------------------------------------------ internals
    def _map(self, fn: Callable[[Any], str], items: Sequence[Any]) -> List[str]:
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))

    @property
    def _session(self) -> requests.Session:
        # requests.Session is not documented as thread-safe: one per worker thread.
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def backoff(self, attempt: int, retry_after: Optional[float] = None) -> float:
        """Seconds to wait before retry ``attempt`` (0-based): exponential with jitter, or the server's word."""
        if retry_after is not None:
            return min(retry_after, max(self.backoff_max, 1.0))
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _post(self, path: str, payload: Dict[str, Any], check: Callable[[Dict[str, Any]], Any]) -> Dict[str, Any]:
        url = f"{self.base_url}/{path}"
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                logger.info("Retrying %s (attempt %d) after: %s", url, attempt + 1, last)
            try:
                return self._post_once(url, payload, check)
            except _Transient as err:
                last = err.reason
                if attempt == self.max_retries:
                    break
                self._sleep(self.backoff(attempt, err.retry_after))
        raise RetriesExhausted(f"{url} failed {self.max_retries + 1} times; last error: {last}")

    def _post_once(self, url: str, payload: Dict[str, Any], check: Callable[[Dict[str, Any]], Any]) -> Dict[str, Any]:
        with self._count_lock:
            self.requests_sent += 1
        try:
            response = self._session.post(url, json=payload, headers=self._headers, timeout=self.timeout)
        except requests.Timeout as err:
            raise _Transient(f"timeout after {self.timeout}s ({err.__class__.__name__})")
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as err:
            raise _Transient(f"connection error: {err}")
        status = response.status_code
        if status in (401, 403):
            if self.api_key_env and not self._has_key:
                hint = f"the environment variable {self.api_key_env} is not set; set it to your API key"
            elif self.api_key_env:
                hint = f"check the API key in the environment variable {self.api_key_env}"
            else:
                hint = "this server needs an API key: pass the name of the environment variable that holds it"
            raise AuthenticationError(f"{url} refused the request ({status}): {hint}. Server said: {response.text[:300]}")
        if status in RETRY_STATUS or status >= 500:
            raise _Transient(
                f"HTTP {status}: {response.text[:200]}", _retry_after_seconds(response.headers.get("Retry-After"))
            )
        if status >= 400:
            raise ClientError(f"{url} rejected the request ({status}): {response.text[:500]}")
        try:
            data = response.json()
            check(data)
        except (ValueError, KeyError, IndexError, TypeError):
            # A truncated or garbled body is usually a proxy or server hiccup: try again.
            raise _Transient(f"unreadable response body: {response.text[:200]!r}")
        return data
