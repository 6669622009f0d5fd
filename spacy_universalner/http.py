"""One client for OpenAI-compatible servers (OpenAI, vLLM, llama.cpp, TGI, ...).

Used by the distillation teacher (``chat``) and by the completions inference backend
(``complete``), so both share one behaviour for keys, retries and concurrency:

- the API key is read from an environment variable whose *name* is configured (optional: local
  servers usually need none);
- 429, 5xx, timeouts, dropped connections and unreadable response bodies are retried with
  exponential backoff and jitter, honouring ``Retry-After``;
- a server that cannot be reached (connection refused, unknown host) fails within seconds with
  :class:`Unreachable` naming the URL (two quick retries, for a server that is restarting);
- 401/403 stop at once with :class:`AuthenticationError` naming the variable to fix;
- a response body larger than ``max_response_bytes`` (:data:`MAX_RESPONSE_BYTES`) is not read
  further: :class:`ResponseTooLarge` (a server that ignores ``max_tokens`` cannot fill the memory);
- other 4xx (a bad request will not get better) raise :class:`ClientError` at once;
- ``timeout`` is a deadline for the whole request (connect, headers and body), not per socket read:
  a server that trickles its answer is cut off and the request retried;
- ``chat_many`` / ``complete_many`` run at most ``concurrency`` requests at a time, and a request
  that fails for good does not lose the others' answers (:class:`PartialFailure`);
- no secret is printed: credentials in a URL (``http://user:KEY@host``) are stripped from every URL
  in messages, and the key (and anything that looks like a bearer token) is masked in quoted bodies
  and in every error raised or passed on;
- the key is read with surrounding whitespace stripped (a trailing newline from ``$(cat key.txt)``);
  when both a key and URL credentials are given, the key (``Authorization: Bearer``) wins and the
  URL's credentials are not sent; URL credentials alone are sent as HTTP Basic auth.
Settings are checked when the client is built (:func:`check_client_settings`).
"""

import email.utils
import json
import logging
import os
import random
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import unquote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429})
#: The most bytes read from one response body (4 MiB). A UniNER answer is at most a few kilobytes and a
#: teacher's at most its ``max_tokens`` (1,024 tokens by default, about 6 KB), with log-probabilities about 20
#: times that: the cap only stops a server that ignores ``max_tokens`` (a 20 MiB answer used to take 3 GB).
MAX_RESPONSE_BYTES = 4 << 20
#: Quick retries of a connection that cannot be made (refused, unknown host): a server restarting gets about
#: two seconds; a server that is not there fails at once instead of after every backoff.
CONNECT_RETRIES = 2
CONNECT_RETRY_DELAY = 0.5


class HTTPClientError(RuntimeError):
    """A request failed for good; the message says why."""


class AuthenticationError(HTTPClientError):
    """The server refused the credentials (401/403): retrying cannot help."""


class ClientError(HTTPClientError):
    """The server rejected the request (4xx other than auth and rate limits)."""


class RetriesExhausted(HTTPClientError):
    """Transient failures (rate limits, 5xx, timeouts) outlasted every retry."""


class Unreachable(HTTPClientError):
    """No connection could be made (refused, unknown host): the server is not there or base_url is wrong."""


class ResponseTooLarge(HTTPClientError):
    """The response body was larger than ``max_response_bytes``: the server ignored the answer's token cap."""


class PartialFailure(HTTPClientError):
    """Some requests of a ``*_many`` call failed for good; the others' answers are kept.

    ``results`` has one entry per item, ``None`` where it failed; ``errors`` maps those items'
    indices to their errors.
    """

    def __init__(self, message: str, results: List[Any], errors: Dict[int, HTTPClientError]):
        super().__init__(message)
        self.results = results
        self.errors = errors


def check_client_settings(
    base_url: str,
    *,
    timeout: float,
    max_retries: int,
    backoff_base: float,
    concurrency: int = 1,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
) -> None:
    """Refuse settings that would only fail at the first request, with a message naming the setting."""
    parts = urlsplit(split_credentials(base_url)[0]) if isinstance(base_url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"base_url must be an http(s) URL such as 'http://localhost:8000/v1', got {redact_url(str(base_url))!r}."
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as err:
        raise ValueError(f"base_url {redact_url(base_url)!r} has a bad port: {err}.") from None
    for setting, value, minimum, strict in (
        ("timeout", timeout, 0, True),
        ("backoff_base", backoff_base, 0, False),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or value != value
            or (value <= minimum if strict else value < minimum)
        ):
            bound = "greater than 0" if strict else "at least 0"
            raise ValueError(f"{setting} must be a number of seconds {bound}, got {value!r}.")
    for setting, value, minimum in (
        ("max_retries", max_retries, 0),
        ("concurrency", concurrency, 1),
        ("max_response_bytes", max_response_bytes, 1024),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{setting} must be an integer >= {minimum}, got {value!r}.")


def split_credentials(url: str) -> Tuple[str, Optional[Tuple[str, str]]]:
    """``(url without credentials, (user, password) or None)`` for ``http://user:PASSWORD@host/v1``.

    The credentials are everything between ``://`` and the *last* ``@``, so a password holding ``#``, ``/``
    or ``?`` (which ``urlsplit`` would read as the start of a fragment, path or query) is still one password,
    never part of the host or port shown in a message. Percent-escapes in them are decoded.
    """
    scheme, separator, rest = url.partition("://")
    if not separator or "@" not in rest:
        return url, None
    userinfo, host = rest.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    return f"{scheme}://{host}", (unquote(user), unquote(password))


def _raw_password(url: str) -> str:
    """The password as written in ``url`` (percent-escapes kept), to mask it wherever it is quoted back."""
    rest = url.partition("://")[2]
    return rest.rsplit("@", 1)[0].partition(":")[2] if "@" in rest else ""


def has_credentials(url: str) -> bool:
    """Whether ``url`` holds a user name or password (``http://user:KEY@host``)."""
    return split_credentials(url)[1] is not None if "://" in url else "@" in url


def redact_url(url: str) -> str:
    """``url`` without credentials (``http://user:KEY@host/v1`` -> ``http://host/v1``), to store or print."""
    if "@" not in url:
        return url
    if "://" in url:
        return split_credentials(url)[0]
    return "***@" + url.rsplit("@", 1)[1]  # not a URL at all: still nothing before the "@" is shown


_USERINFO = re.compile(r"://[^@\s'\"]*@")
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}")
_KEY_FIELD = re.compile(
    r"""(?i)\b(api[_-]?key|access[_-]?token|token|key)(["']?\s*[:=]\s*["']?)[A-Za-z0-9._~+/-]{8,}"""
)
_KEY_LIKE = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_-]{16,}|\bhf_[A-Za-z0-9]{16,}")


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` (a server's body, an error) with each of ``secrets``, URL credentials and anything that
    looks like a bearer token or an API key replaced by ``***``: some servers echo the request back."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _USERINFO.sub("://***@", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    text = _KEY_FIELD.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    return _KEY_LIKE.sub("***", text)


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a chat answer's ``message``: a string, or a list of content parts (``{"type": "text",
    "text": ...}``) joined; anything else is an :class:`HTTPClientError` (that passage failed)."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part if isinstance(part, str) else part.get("text") if isinstance(part, dict) else None for part in content
        ]
        if all(isinstance(text, str) for text in texts):
            return "".join(texts)  # type: ignore[arg-type]
    raise HTTPClientError(f"The chat answer's content is not text: {content!r:.200}")


class _Deadline:
    """Cuts off one request at ``timeout`` seconds, whatever the server trickles.

    ``requests`` applies its timeout to each socket read, so a server sending a byte every half
    second holds a request forever. The connection the request uses records its socket here once
    the request is sent (:class:`_TrackedConnection`); a timer shuts that socket down at the
    deadline, which makes the blocked read fail at once.
    """

    def __init__(self, seconds: float):
        self.sock: Optional[socket.socket] = None
        self.expired = False
        self._done = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "_Deadline":
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()
        _current.deadline = None

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
        while True:  # the request may still be connecting or sending (bounded by the socket timeout)
            with self._lock:
                if self._done:
                    return
                if self.sock is not None:
                    try:
                        self.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
            time.sleep(0.02)


_current = threading.local()


class _TrackedConnection:
    """Tells the calling thread's :class:`_Deadline` which socket its response is read from."""

    sock: Optional[socket.socket]

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            with deadline._lock:
                deadline.sock = self.sock  # kept: http.client drops it from the connection mid-response
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_TrackedConnection, HTTPConnection):
    pass


class _HTTPSConnection(_TrackedConnection, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _DeadlineAdapter(HTTPAdapter):
    """``requests``' adapter, with connections a :class:`_Deadline` can cut off."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _TRACKED_POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS proxies bring their own connections: per-read timeout
            manager.pool_classes_by_scheme = _TRACKED_POOLS
        return manager


_TRACKED_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: Optional[float] = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _CannotConnect(_Transient):
    """No connection could be made: retried only :data:`CONNECT_RETRIES` times, quickly."""


def _connect_failure(err: requests.ConnectionError) -> Optional[str]:
    """Why no connection could be made ("connection refused", "unknown host ..."), or None for any other
    connection error (a dropped connection, a proxy's failure: those keep the normal backoff)."""
    if isinstance(err, requests.exceptions.ProxyError):
        return None
    reason = err.args[0] if err.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the real cause
    if isinstance(reason, NameResolutionError):
        return f"unknown host {getattr(reason, 'conn', None) and reason.conn.host or ''}".strip()
    if isinstance(reason, NewConnectionError):
        text = str(reason)
        return "connection refused" if "refused" in text.lower() else f"no connection ({text.split(': ', 1)[-1]})"
    return None


#: A header value: printable ASCII, no spaces or line breaks (a key with a newline inside cannot be sent).
_HEADER_TOKEN = re.compile(r"[\x21-\x7e]+")


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
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ):
        check_client_settings(
            base_url,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            concurrency=concurrency,
            max_response_bytes=max_response_bytes,
        )
        url, credentials = split_credentials(base_url.rstrip("/"))
        #: The API root without credentials: safe to store (a teacher's name) and print; requests go here too
        #: (the credentials travel in the Authorization header, never in the URL).
        self.base_url = url.rstrip("/")
        self.max_response_bytes = max_response_bytes
        self.model = model
        self.api_key_env = api_key_env or None
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.concurrency = concurrency
        self.params: Dict[str, Any] = dict(params or {})
        self._headers = {"Content-Type": "application/json", **dict(headers or {})}
        raw_key = os.environ.get(self.api_key_env) if self.api_key_env else None
        api_key = (raw_key or "").strip()  # a trailing newline (`export KEY=$(cat key.txt)`) is not part of it
        password = credentials[1] if credentials else ""
        #: What :func:`redact` masks in quoted bodies and errors: the key (as set and stripped) and the URL's password.
        self._secrets = [v for v in (raw_key, api_key, password, _raw_password(base_url)) if v and v.strip()]
        if api_key and not _HEADER_TOKEN.fullmatch(api_key):
            raise ValueError(
                f"The API key in the environment variable {self.api_key_env} holds a space, a line break or a "
                "non-ASCII character inside it, so it cannot be sent: set the variable to the key alone."
            )
        self._auth: Optional[Tuple[str, str]] = None
        if api_key:  # the key wins over URL credentials (documented): one Authorization header, never both
            self._headers["Authorization"] = f"Bearer {api_key}"
        elif credentials:
            self._auth = credentials  # HTTP Basic, as requests would send them from the URL
        self._has_key = bool(api_key)
        self._sleep = sleep
        self._local = threading.local()
        self.requests_sent = 0
        self._count_lock = threading.Lock()

    # ------------------------------------------------------------------ public API
    def chat(self, messages: Sequence[Mapping[str, str]], **params: Any) -> str:
        """The assistant message's text for one conversation."""
        data = self.chat_response(messages, **params)
        return message_text(data["choices"][0]["message"])  # its shape is checked in _post

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
        """``complete_response`` for each prompt (full JSON, e.g. with ``logprobs``), ``concurrency`` at a time, in
        order.
        """
        return self._map(lambda prompt: self.complete_response(prompt, **params), prompts)  # type: ignore[arg-type, return-value]

    # ------------------------------------------------------------------ internals
    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> List[Any]:
        """``fn`` over ``items``, ``concurrency`` at a time, every item tried even when one fails for good.

        If all fail, the first error is raised as it is; if only some do, :class:`PartialFailure`
        carries the answers that did arrive, so the caller can keep them.
        """
        results: List[Any] = [None] * len(items)
        errors: Dict[int, HTTPClientError] = {}

        def run(i: int) -> None:
            try:
                results[i] = fn(items[i])
            except HTTPClientError as err:
                errors[i] = err

        if len(items) <= 1 or self.concurrency == 1:
            for i in range(len(items)):
                run(i)
        else:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
                list(pool.map(run, range(len(items))))
        if errors:
            first = errors[min(errors)]
            if len(errors) == len(items):
                raise first
            raise PartialFailure(
                f"{len(errors)} of {len(items)} requests to {self.base_url} failed; first error: {first}",
                results,
                errors,
            ) from first
        return results

    @property
    def _session(self) -> requests.Session:
        # requests.Session is not documented as thread-safe: one per worker thread.
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            for prefix in ("http://", "https://"):
                session.mount(prefix, _DeadlineAdapter())
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
        connect_failures = 0
        for attempt in range(self.max_retries + 1):
            if attempt:
                logger.info("Retrying %s (attempt %d) after: %s", url, attempt + 1, last)
            try:
                return self._post_once(url, payload, check)
            except _CannotConnect as err:
                last = err.reason
                if connect_failures >= CONNECT_RETRIES or attempt == self.max_retries:
                    raise Unreachable(
                        f"{url} cannot be reached (connection error: {err.reason}): check that the server is "
                        "running and that base_url is right"
                    ) from None
                self._sleep(CONNECT_RETRY_DELAY * 2**connect_failures)
                connect_failures += 1
            except _Transient as err:
                last = err.reason
                if attempt == self.max_retries:
                    break
                self._sleep(self.backoff(attempt, err.retry_after))
        raise RetriesExhausted(f"{url} failed {self.max_retries + 1} times; last error: {last}")

    def _post_once(self, url: str, payload: Dict[str, Any], check: Callable[[Dict[str, Any]], Any]) -> Dict[str, Any]:
        with self._count_lock:
            self.requests_sent += 1
        with _Deadline(self.timeout) as deadline:
            try:
                response = self._session.post(
                    url, json=payload, headers=self._headers, auth=self._auth, timeout=self.timeout, stream=True
                )
                body = self._read_body(url, response)
            except requests.RequestException as err:
                if deadline.expired or isinstance(err, requests.Timeout):
                    raise _Transient(f"timeout: no complete response within {self.timeout}s")
                if isinstance(err, requests.ConnectionError):
                    cannot = _connect_failure(err)
                    if cannot:
                        raise _CannotConnect(cannot)
                if isinstance(
                    err,
                    (
                        requests.ConnectionError,
                        requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ContentDecodingError,
                    ),
                ):
                    # A dropped connection or a body that does not decode (a bad gzip stream): a transport hiccup.
                    raise _Transient(f"connection error: {self._redact(str(err))}")
                # Anything else (a header requests refuses, a bad URL) will not get better; its text is masked.
                raise HTTPClientError(f"{url}: {type(err).__name__}: {self._redact(str(err))}") from None
            if deadline.expired:  # cut off mid-answer: what was read may be truncated
                raise _Transient(f"timeout: no complete response within {self.timeout}s")
        status = response.status_code
        text = body[:600].decode("utf8", "replace")  # only ever quoted, cut: enough to say what the server said
        if status in (401, 403):
            if self.api_key_env and not self._has_key:
                hint = f"the environment variable {self.api_key_env} is not set; set it to your API key"
            elif self.api_key_env:
                hint = f"check the API key in the environment variable {self.api_key_env}"
            else:
                hint = "this server needs an API key: pass the name of the environment variable that holds it"
            raise AuthenticationError(
                f"{url} refused the request ({status}): {hint}. Server said: {self._redact(text[:300])}"
            )
        if status in RETRY_STATUS or status >= 500:
            raise _Transient(
                f"HTTP {status}: {self._redact(text[:200])}",
                _retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status >= 400:
            raise ClientError(f"{url} rejected the request ({status}): {self._redact(text[:500])}")
        try:
            data = json.loads(body)
            check(data)
        except (ValueError, KeyError, IndexError, TypeError, RecursionError):
            # A truncated or garbled body is usually a proxy or server hiccup: try again.
            raise _Transient(f"unreadable response body: {self._redact(text[:200])!r}")
        return data

    def _read_body(self, url: str, response: requests.Response) -> bytes:
        """The (decoded) body, at most ``max_response_bytes``: more is :class:`ResponseTooLarge`, not read."""
        declared = response.headers.get("Content-Length", "")
        if (
            declared.isdigit()
            and int(declared) > self.max_response_bytes
            and "Content-Encoding" not in response.headers
        ):
            response.close()
            raise self._too_large(url)
        chunks, size = [], 0
        for chunk in response.iter_content(chunk_size=1 << 16):
            size += len(chunk)
            if size > self.max_response_bytes:
                response.close()
                raise self._too_large(url)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, url: str) -> ResponseTooLarge:
        return ResponseTooLarge(
            f"{url} sent a response larger than max_response_bytes ({self.max_response_bytes:,} bytes), so it was not "
            "read: the server seems to ignore max_tokens. Cap the answer length on the server, or raise "
            "max_response_bytes."
        )

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)
