"""Models by name: the models packaged here, hub ids and local folders, and what loading them needs.

One owner for: packaged-model resolution (their files are in ``spacy_universalner/weights/``), the
weight fingerprint the response cache keys answers on, loading with clear errors (and offline detection),
tokenizer loading, the position limit of a config, and the byte-level BPE tokenizer the students and test
models train.
"""

import hashlib
import os
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional

from .types import BackendError


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1 or Path(name).expanduser().exists()


def is_hub_id(name: str) -> bool:
    """Whether ``name`` would be fetched from the Hugging Face hub (not a packaged model, not a local path)."""
    return name not in PACKAGED_MODELS and not _looks_like_path(name)


def did_you_mean(name: str) -> Optional[str]:
    """The packaged model whose name is close to ``name`` (a typo such as "uniner-spn"), or the one that
    replaced a model packaged before ("uniner-mini"), or None."""
    from difflib import get_close_matches

    typed = Path(name.rstrip("/\\")).name.lower()
    if typed in REPLACED_MODELS:
        return REPLACED_MODELS[typed]
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
    if name.lower() in REPLACED_MODELS:  # old docs: no download advice, the name was never a hub id
        return BackendError(
            f"Could not load the {what} of model {name!r}: it was packaged with earlier versions of "
            f"spacy-universalner and was replaced by {REPLACED_MODELS[name.lower()]!r}, which ships with the "
            "package (the default model): pass that name, or no model at all."
        )
    suggestion = did_you_mean(name)
    hint = ""
    if suggestion:
        hint = f"Did you mean {suggestion!r}, a model packaged with spacy-universalner (no download)?\n"
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
        + (
            f"`{_folder_option.get()}`."
            if _folder_option.get()
            else "`--model ./my-model` on the command line, or in Python "
            '`nlp.add_pipe("universal_ner", config={"model": {"@uniner_backends": '
            '"spacy_universalner.HuggingFace.v1", "name": "./my-model"}})`.'
        )
    )


_folder_option: ContextVar[Optional[str]] = ContextVar("uniner_folder_option", default=None)


@contextmanager
def folder_option(option: str):
    """Within the block, loading errors tell the user to pass a downloaded folder as ``option``
    (e.g. ``--tokenizer ./my-model``): the commands whose model option is not ``--model`` say so, since a
    hint naming an option the command lacks only leads to a second error."""
    token = _folder_option.set(option)
    try:
        yield
    finally:
        _folder_option.reset(token)


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


#: Models shipped inside this package (one folder each under ``weights/``), loadable by name with no hub access.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
PACKAGED_MODELS = ("uniner-span",)
#: Models packaged before, by the packaged model that replaced each: a user following old docs is told so.
REPLACED_MODELS = {"uniner-mini": "uniner-span"}


def resolve_model_name(name: str) -> str:
    """The folder of a packaged model (``"uniner-span"``); any other name (hub id, path) unchanged."""
    return str(WEIGHTS_DIR / name) if name in PACKAGED_MODELS else name


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


#: LLaMA's special tokens, at LLaMA's ids: ``<unk>`` 0 (also padding, as in UniNER), ``<s>`` 1, ``</s>`` 2.
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """Byte-level BPE with LLaMA's special tokens: ``<s>`` prepended, ``<unk>`` pads (any Unicode text stays
    encodable)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    bos = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<unk>",
        padding_side="left",
        model_input_names=["input_ids", "attention_mask"],
    )
