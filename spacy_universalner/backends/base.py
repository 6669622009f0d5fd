"""The contract between the component and a generation backend.

A backend is a callable built from the ``@uniner_backends`` registry. It receives
:class:`~spacy_universalner.prompt.Query` objects (passage prefix + label suffix; queries of the
same chunk share the prefix, so a backend may compute it once) and returns one
:class:`Generation` per query, in order, decoded greedily. Backends load their models lazily.
"""
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Protocol, Sequence, Tuple, runtime_checkable

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


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1 or Path(name).expanduser().exists()


def load_error(name: str, what: str, err: Exception) -> BackendError:
    """The error for a model (or its tokenizer) that cannot be loaded: what failed and how to pass a local folder."""
    if name in PACKAGED_MODELS:
        return BackendError(
            f"Could not load the {what} of the packaged model {name!r} from {resolve_model_name(name)}: {err}\n"
            "The files ship with spacy-universalner; reinstall the package (pip install --force-reinstall)."
        )
    if _looks_like_path(name) and not Path(name).expanduser().exists():
        return BackendError(
            f"Could not load the {what} of model {name!r}: there is no folder at {Path(name).expanduser().resolve()}. "
            "Check the path (a folder saved with `save_pretrained`, holding config.json and the weights)."
        )
    return BackendError(
        f"Could not load the {what} of model {name!r}: {err}\n"
        "If the name is a Hugging Face hub id, check its spelling and your network access (offline, set "
        "HF_HUB_OFFLINE=1 to fail at once instead of retrying). To run offline, download the model once "
        f"(e.g. `huggingface-cli download {name} --local-dir ./my-model`) and give that folder as the model name: "
        "`--model ./my-model` on the command line, or in Python "
        '`nlp.add_pipe("universal_ner", config={"model": {"@uniner_backends": '
        '"spacy_universalner.HuggingFace.v1", "name": "./my-model"}})`.'
    )


#: Models shipped inside this package, loadable by name with no hub access.
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
PACKAGED_MODELS = ("uniner-mini",)


def resolve_model_name(name: str) -> str:
    """The folder of a packaged model (``"uniner-mini"``); any other name (hub id, path) unchanged."""
    return str(MODELS_DIR / name) if name in PACKAGED_MODELS else name


def position_limit(config) -> Optional[int]:
    """A transformers config's position limit (prompt + answer); None if the model has none."""
    return getattr(config.get_text_config(), "max_position_embeddings", None)


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_SAMPLE_BYTES = 1 << 20


def cache_key(name: str) -> str:
    """The response cache's name for model ``name``: the name, plus a fingerprint of local weights.

    Retraining into the same folder (or upgrading the packaged ``uniner-mini``) must not serve the
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

    try:
        return AutoTokenizer.from_pretrained(resolve_model_name(name), **kwargs)
    except Exception as err:  # OSError, ValueError, HTTP errors: all mean "cannot load"
        raise load_error(name, "tokenizer", err) from err


def count_tokens_with(tokenizer, texts: Sequence[str]) -> List[int]:
    """Model tokens per text, without BOS/EOS: what a passage costs inside the prompt."""
    if not texts:
        return []
    return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
