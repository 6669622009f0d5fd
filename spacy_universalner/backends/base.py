"""The contract between the component and a generation backend.

A backend is a callable built from the ``@uniner_backends`` registry. It receives
:class:`~spacy_universalner.prompt.Query` objects (passage prefix + label suffix; queries of the
same chunk share the prefix, so a backend may compute it once) and returns one
:class:`Generation` per query, in order, decoded greedily. Backends load their models lazily.
"""
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple, Union, runtime_checkable

from ..prompt import Query


@dataclass
class Generation:
    """A raw answer, and optionally the log-probability of each generated token (for confidences)."""

    text: str
    token_logprobs: Optional[List[float]] = None
    #: Character ``(start, end)`` of each generated token in ``text``, aligned with ``token_logprobs``.
    token_offsets: Optional[List[Tuple[int, int]]] = None


@runtime_checkable
class Backend(Protocol):
    #: The hub id, path or packaged name the user gave.
    name: str

    def __call__(self, queries: Sequence[Query], max_new_tokens: int = 256) -> List[Generation]:
        """One greedy answer per query, in order, at most ``max_new_tokens`` tokens, stopping at EOS."""
        ...


class Tokenizing(Protocol):
    """Backends that can count model tokens, which chunking of long Docs needs."""

    def count_tokens(self, texts: Sequence[str]) -> List[int]:
        ...

    @property
    def eos_text(self) -> Optional[str]:
        ...


class BackendError(RuntimeError):
    """A backend could not be loaded or run; the message says what to do about it."""


class PartialGenerations(BackendError):
    """Some queries of a call failed for good; ``generations`` holds the others' answers (``None`` where
    failed), so the caller can keep them (the component caches them before it reports the failure)."""

    def __init__(self, message: str, generations: List[Optional[Generation]]):
        super().__init__(message)
        self.generations = generations


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1 or Path(name).expanduser().exists()


def is_hub_id(name: str) -> bool:
    """Whether ``name`` would be fetched from the Hugging Face hub (not a packaged model, not a local path)."""
    return name not in PACKAGED_MODELS and not _looks_like_path(name)


def did_you_mean(name: str) -> Optional[str]:
    """The packaged model whose name is close to ``name`` (a typo such as "uniner-mni"), or None."""
    from difflib import get_close_matches

    typed = Path(name.rstrip("/\\")).name.lower()
    matches = get_close_matches(typed, PACKAGED_MODELS, n=1, cutoff=0.8)
    return matches[0] if matches and name not in PACKAGED_MODELS else None


#: Seconds to wait for the hub to answer one request before treating it as unreachable.
HUB_PROBE_TIMEOUT = 3.0
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_hub_probes: Dict[str, Optional[str]] = {}


def hub_offline_reason() -> Optional[str]:
    """Why the Hugging Face hub cannot be used now ("HF_HUB_OFFLINE is set", "... cannot be reached"), or None.

    The hub client retries a dead connection for about a minute per file; one request with a short
    timeout, once per process, tells the same in seconds, and models already in the local cache
    still load (``local_files_only``) without ``HF_HUB_OFFLINE``.
    """
    for variable in _OFFLINE_VARIABLES:
        if os.environ.get(variable, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return f"{variable} is set"
    from huggingface_hub import constants

    endpoint = constants.ENDPOINT
    if endpoint not in _hub_probes:
        import requests

        try:
            requests.head(endpoint, timeout=HUB_PROBE_TIMEOUT)
            _hub_probes[endpoint] = None
        except requests.RequestException as err:
            _hub_probes[endpoint] = f"the Hugging Face hub ({endpoint}) cannot be reached ({type(err).__name__})"
    return _hub_probes[endpoint]


def load_error(name: str, what: str, err: Exception, offline: Optional[str] = None) -> BackendError:
    """The error for a model (or its tokenizer) that cannot be loaded: what failed and how to pass a local folder.

    ``offline`` is :func:`hub_offline_reason`'s answer when the hub could not be asked: the model was
    looked up in the local cache only, so the message says that instead of the hub client's error.
    """
    if name in PACKAGED_MODELS:
        return BackendError(
            f"Could not load the {what} of the packaged model {name!r} from {resolve_model_name(name)}: {err}\n"
            "The files ship with spacy-universalner; reinstall the package (pip install --force-reinstall)."
        )
    suggestion = did_you_mean(name)
    hint = f"Did you mean {suggestion!r}, a model packaged with spacy-universalner (no download)?\n" if suggestion else ""
    if _looks_like_path(name) and not Path(name).expanduser().exists():
        return BackendError(
            f"Could not load the {what} of model {name!r}: there is no folder at {Path(name).expanduser().resolve()}.\n"
            f"{hint}Check the path (a folder saved with `save_pretrained`, holding config.json and the weights)."
        )
    if offline:
        problem = f"{offline}, and the model is not in the local Hugging Face cache."
    else:
        problem = f"{err}\nIf the name is a Hugging Face hub id, check its spelling and your network access."
    return BackendError(
        f"Could not load the {what} of model {name!r}: {problem}\n{hint}"
        "To run offline, download the model once where the hub can be reached "
        f"(`hf download {name} --local-dir ./my-model`) and give that folder as the model name: "
        "`--model ./my-model` on the command line, or in Python "
        '`nlp.add_pipe("universal_ner", config={"model": {"@uniner_backends": '
        '"spacy_universalner.HuggingFace.v1", "name": "./my-model"}})`.'
    )


def load_pretrained(loader: Callable[..., Any], name: str, what: str, **kwargs: Any) -> Any:
    """``loader(folder or hub id, **kwargs)`` (a transformers ``from_pretrained``), or a clear :class:`BackendError`.

    When the hub cannot be used, a hub id is read from the local cache only: no request, so no retries,
    and a model that is not there fails at once with one message (no transformers traceback behind it).
    """
    offline = hub_offline_reason() if is_hub_id(name) else None
    if offline:
        kwargs = {"local_files_only": True, **kwargs}
    try:
        return loader(resolve_model_name(name), **kwargs)
    except Exception as err:  # OSError, ValueError, HTTP errors: all mean "cannot load"
        error = load_error(name, what, err, offline)
        if offline:  # the message says what happened; the hub client's traceback would bury it
            raise error from None
        raise error from err


#: Models shipped inside this package, loadable by name with no hub access.
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
PACKAGED_MODELS = ("uniner-span",)


def resolve_model_name(name: str) -> str:
    """The folder of a packaged model (``"uniner-span"``); any other name (hub id, path) unchanged."""
    return str(MODELS_DIR / name) if name in PACKAGED_MODELS else name


def position_limit(config) -> Optional[int]:
    """A transformers config's position limit (prompt + answer); None if the model has none."""
    return getattr(config.get_text_config(), "max_position_embeddings", None)


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_SAMPLE_BYTES = 1 << 20


def cache_key(name: str) -> str:
    """The response cache's name for model ``name``: the name, plus a fingerprint of local weights.

    Retraining into the same folder (or upgrading the packaged ``uniner-span``) must not serve the
    old model's cached answers. A local folder's key is ``name@<12 hex>``, hashed from each weight
    file's name, size and first and last MiB (fast even for 27 GB of shards; the bytes change with
    any retraining). Hub ids and remote models keep their plain name.
    """
    folder = Path(resolve_model_name(name)).expanduser()
    if not folder.is_dir():
        return name
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES)):
        size = path.stat().st_size
        digest.update(f"{path.name}\0{size}\0".encode())
        with path.open("rb") as file_:
            digest.update(file_.read(_SAMPLE_BYTES))
            if size > 2 * _SAMPLE_BYTES:
                file_.seek(size - _SAMPLE_BYTES)
                digest.update(file_.read(_SAMPLE_BYTES))
    return f"{name}@{digest.hexdigest()[:12]}"


def load_tokenizer(name: str, **kwargs):
    """A transformers tokenizer (no weights), or a clear :class:`BackendError`."""
    from transformers import AutoTokenizer

    return load_pretrained(AutoTokenizer.from_pretrained, name, "tokenizer", **kwargs)


def count_tokens_with(tokenizer, texts: Sequence[str]) -> List[int]:
    """Model tokens per text, without BOS/EOS: what a passage costs inside the prompt (read as plain
    text, as :func:`encode_prompts` reads it: a literal ``</s>`` is several tokens, not EOS)."""
    if not texts:
        return []
    encoded = tokenizer(list(texts), add_special_tokens=False, split_special_tokens=True)["input_ids"]
    return [len(ids) for ids in encoded]


# -- prompts as plain text: a passage cannot inject conversation turns ------------------------------
def special_token_texts(tokenizer) -> Tuple[str, ...]:
    """The text of each special token of ``tokenizer`` (``<s>``, ``</s>``...), longest first."""
    texts = set(getattr(tokenizer, "all_special_tokens", None) or ())
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    texts.update(token.content for token in added.values() if getattr(token, "special", False))
    return tuple(sorted((text for text in texts if isinstance(text, str) and text), key=len, reverse=True))


#: ``(text, is_markup)``: only markup (the template's own separator, a chat template's tokens) may be special.
Piece = Tuple[str, bool]


def _plain_holds_special(pieces: Sequence[Piece], specials: Sequence[str]) -> bool:
    return any(special in text for text, markup in pieces if not markup for special in specials)


def encode_pieces(
    tokenizer, pieces: Sequence[Piece], add_special_tokens: bool = True, specials: Optional[Sequence[str]] = None
) -> List[int]:
    """Token ids of the concatenated ``pieces``, where special-token text counts only in markup pieces.

    Passage text and labels are plain text: a literal ``</s>`` in a passage read as EOS would end the
    user's turn and let the passage inject ``USER: ... ASSISTANT:`` turns. Where no plain piece holds
    special-token text (nearly always), the string is tokenized whole, exactly as ``tokenizer(text)``;
    otherwise piece by piece, plain pieces with ``split_special_tokens=True`` (BOS before the first).
    """
    specials = special_token_texts(tokenizer) if specials is None else specials
    if not _plain_holds_special(pieces, specials):
        return list(tokenizer("".join(text for text, _ in pieces), add_special_tokens=add_special_tokens)["input_ids"])
    ids: List[int] = []
    for text, markup in (piece for piece in pieces if piece[0]):
        first = add_special_tokens and not ids
        ids.extend(tokenizer(text, add_special_tokens=first, split_special_tokens=not markup)["input_ids"])
    return ids


def _prompt_pieces(query: Query, specials: Sequence[str]) -> List[Piece]:
    """A prompt's pieces: everything is plain text except the separator that ends the passage prefix."""
    separator = next((special for special in specials if query.prefix.endswith(special)), "")
    body = query.prefix[: len(query.prefix) - len(separator)]
    return [(body, False), (separator, True), (query.suffix, False)]


def safe_prompts(tokenizer, queries: Sequence[Query]) -> List[Union[str, List[int]]]:
    """Each query's prompt as a string where the tokenizer would read it as intended, else as token ids.

    A prompt whose passage or label holds special-token text (a literal ``</s>``) is given as ids from
    :func:`encode_pieces`; every other prompt stays the exact string, tokenized as the official code does.
    """
    specials = special_token_texts(tokenizer)
    prompts: List[Union[str, List[int]]] = []
    for query in queries:
        pieces = _prompt_pieces(query, specials)
        prompts.append(encode_pieces(tokenizer, pieces, specials=specials) if _plain_holds_special(pieces, specials) else query.prompt)
    return prompts


def encode_prompts(tokenizer, queries: Sequence[Query]) -> List[List[int]]:
    """Token ids (BOS included) of each query's prompt, passage and label read as plain text
    (:func:`safe_prompts`); prompts without special-token text are tokenized together, in one call."""
    prompts = safe_prompts(tokenizer, queries)
    strings = [i for i, prompt in enumerate(prompts) if isinstance(prompt, str)]
    encoded = tokenizer([prompts[i] for i in strings])["input_ids"] if strings else []
    for i, ids in zip(strings, encoded):
        prompts[i] = list(ids)
    return prompts  # type: ignore[return-value]
