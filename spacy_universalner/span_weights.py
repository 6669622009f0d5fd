"""int8 weights for packaged span models: a 29M-parameter GLiNER in about 30 MB.

Every large matrix (embeddings, linear and LSTM weights) is stored as int8 with one float32 scale
per row (symmetric, ``scale = max|row| / 127``); small tensors (biases, norms) stay float32. On
load the weights are expanded back to float32, so inference runs at full precision and the model
is an ordinary ``gliner`` model; only the file is small. ``export-span`` writes this format and
``tests/test_backend_gliner.py`` checks the round trip; the model card gives F1 before and after.
"""

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Union

if TYPE_CHECKING:  # torch is imported where a model is saved or loaded
    import torch

INT8_WEIGHTS = "model.int8.safetensors"
_SCALE = ".__scale__"
#: Tensors with fewer elements than this stay float32 (their bytes do not matter).
MIN_QUANTIZED = 4096
#: What a GLiNER folder needs besides its weights.
_CONFIG_FILES = (
    "uniner_settings.json",
    "gliner_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)


def quantize_state_dict(state_dict: Mapping[str, "torch.Tensor"]) -> Dict[str, "torch.Tensor"]:
    """int8 rows plus per-row scales for large 2-D float tensors; everything else float32."""
    import torch

    packed: Dict[str, torch.Tensor] = {}
    for name, tensor in state_dict.items():
        tensor = tensor.detach().to("cpu")
        if tensor.is_floating_point() and tensor.dim() == 2 and tensor.numel() >= MIN_QUANTIZED:
            tensor = tensor.float()
            scale = tensor.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
            packed[name] = torch.round(tensor / scale).clamp(-127, 127).to(torch.int8).contiguous()
            packed[name + _SCALE] = scale.contiguous()
        else:
            packed[name] = (tensor.float() if tensor.is_floating_point() else tensor).contiguous()
    return packed


def dequantize_state_dict(packed: Mapping[str, "torch.Tensor"]) -> Dict[str, "torch.Tensor"]:
    """The float32 state dict of :func:`quantize_state_dict`'s output."""
    state: Dict[str, torch.Tensor] = {}
    for name, tensor in packed.items():
        if name.endswith(_SCALE):
            continue
        scale = packed.get(name + _SCALE)
        state[name] = tensor.float() * scale if scale is not None else tensor
    return state


def export_int8(
    source: Union[str, Path],
    dest: Union[str, Path],
    threshold: Optional[float] = None,
    dtype: Optional[str] = None,
    flat_decoding: Optional[str] = None,
) -> List[Path]:
    """Copy a GLiNER folder (``save_pretrained``) to ``dest`` with int8 weights; return the files written.

    ``threshold``, ``dtype`` and ``flat_decoding``: the decision threshold, compute dtype and flat decoding the
    span backend uses for this model by default (``uniner_settings.json``; the dtype only where the device runs
    it natively)."""
    from gliner import GLiNER
    from safetensors.torch import save_file

    source, dest = Path(source), Path(dest)
    model = GLiNER.from_pretrained(str(source.expanduser().resolve()), local_files_only=True)
    dest.mkdir(parents=True, exist_ok=True)
    for stale in ("model.safetensors", "pytorch_model.bin"):
        (dest / stale).unlink(missing_ok=True)
    save_file(quantize_state_dict(model.model.state_dict()), str(dest / INT8_WEIGHTS))
    written = [dest / INT8_WEIGHTS]
    for name in _CONFIG_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, dest / name)
            written.append(dest / name)
    config = dest / "gliner_config.json"
    if config.is_file():  # its model_name is the training machine's path: the folder itself serves instead
        values = json.loads(config.read_text(encoding="utf8"))
        values["model_name"] = "."
        config.write_text(json.dumps(values, indent=2) + "\n", encoding="utf8")
    chosen = (("threshold", threshold), ("dtype", dtype), ("flat_decoding", flat_decoding))
    recommended = {key: value for key, value in chosen if value is not None}
    if recommended:
        settings = dest / "uniner_settings.json"
        settings.write_text(json.dumps(recommended) + "\n", encoding="utf8")
        written.append(settings)
    return list(dict.fromkeys(written))


def load_int8_model(folder: Union[str, Path]):
    """A float32 GLiNER model from a folder written by :func:`export_int8` (no backbone download)."""
    from gliner import GLiNER
    from safetensors.torch import load_file

    folder = Path(folder)
    config = json.loads((folder / "gliner_config.json").read_text(encoding="utf8"))
    config["model_name"] = str(folder)  # the tokenizer (with GLiNER's special tokens) is in the folder
    model = GLiNER.from_config(config, backbone_from_pretrained=False, local_files_only=True)
    model.model.load_state_dict(dequantize_state_dict(load_file(str(folder / INT8_WEIGHTS))))
    model.eval()
    return model
