"""Teachers: whatever answers the paper's annotation prompt for one passage.

A teacher is a callable ``passage -> raw answer text`` with a ``name`` (recorded with every
answer) and a ``concurrency`` (how many passages ``annotate`` may have in flight). They are
registered in ``@uniner_teachers`` so a config block can build any of them:

- ``spacy_universalner.OpenAITeacher.v1``: any OpenAI-compatible chat-completions server
  (ChatGPT, vLLM, llama.cpp...), temperature 0, through :mod:`spacy_universalner.http`;
- ``spacy_universalner.HFTeacher.v1``: a local Hugging Face causal LM, greedy decoding;
- ``spacy_universalner.SpacyLLMTeacher.v1``: any model registered in spacy-llm's ``llm_models``;
- ``spacy_universalner.GoldTeacher.v1``: answers from gold entities of a labelled JSONL file. It is
  a stand-in for ChatGPT in offline smoke runs and tests, not a way to distil anything new.
"""

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Protocol, Tuple, Union

from ..registry import uniner_teachers
from ..types import Dtype

SYSTEM_MESSAGE = "You are a helpful information extraction system."
TYPE_INSTRUCTION = (
    "Given a passage, your task is to extract all entities and identify their entity types. "
    'The output should be in a list of tuples of the following format: [("entity 1", "type of entity 1"), ... ].'
)
DEFINITION_INSTRUCTION = (
    "Given a paragraph, your task is to extract all entities and concepts, and define their type using a "
    'short sentence. The output should be in the following format: [("entity", "definition of entity type '
    'in a short sentence"), ... ]'
)
PROMPTS = {"type": TYPE_INSTRUCTION, "definition": DEFINITION_INSTRUCTION}
#: The longest teacher answer asked for, in tokens. A passage of at most 256 tokens rarely has answers
#: past a few hundred; the cap stops a runaway answer (and the parsing cost of one), and an answer cut
#: short is still read pair by pair.
DEFAULT_MAX_TOKENS = 1024


def teacher_messages(passage: str, prompt: str = "type") -> List[Dict[str, str]]:
    """The paper's annotation messages, exactly: the system line, then instruction, blank line, passage."""
    if prompt not in PROMPTS:
        raise ValueError(f"Unknown teacher prompt {prompt!r}; choose one of {sorted(PROMPTS)}")
    return [
        {"role": "system", "content": SYSTEM_MESSAGE},
        {"role": "user", "content": f"{PROMPTS[prompt]}\n\nPassage: {passage}"},
    ]


class Teacher(Protocol):
    name: str
    concurrency: int

    def __call__(self, passage: str) -> str: ...


class OpenAITeacher:
    """A chat model behind an OpenAI-compatible server, asked at temperature 0."""

    def __init__(self, client, prompt: str = "type"):
        self.client = client
        self.prompt = prompt
        self.name = f"{client.model}@{client.base_url}"  # the client's base_url never holds credentials
        self.concurrency = client.concurrency

    def __call__(self, passage: str) -> str:
        return self.client.chat(teacher_messages(passage, self.prompt))


@uniner_teachers("spacy_universalner.OpenAITeacher.v1")
def make_openai_teacher(
    base_url: str,
    model: str,
    api_key_env: Optional[str] = "OPENAI_API_KEY",
    prompt: str = "type",
    concurrency: int = 8,
    timeout: float = 120.0,
    max_retries: int = 8,
    max_tokens: Optional[int] = DEFAULT_MAX_TOKENS,
) -> OpenAITeacher:
    """A chat model over HTTP; ``max_tokens`` caps each answer (``null``: the server's own limit)."""
    from ..http import OpenAIClient

    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ValueError(f"max_tokens must be an integer >= 1 (or null for no cap), got {max_tokens!r}.")

    params: Dict[str, Any] = {"temperature": 0}
    if max_tokens:
        params["max_tokens"] = max_tokens
    client = OpenAIClient(
        base_url,
        model,
        api_key_env=api_key_env,
        timeout=timeout,
        max_retries=max_retries,
        concurrency=concurrency,
        params=params,
    )
    return OpenAITeacher(client, prompt)


class HFTeacher:
    """A local causal LM; the messages go through its chat template when it has one."""

    concurrency = 1

    def __init__(
        self,
        name: str,
        prompt: str = "type",
        device: Optional[str] = None,
        dtype: Dtype = "auto",
        max_new_tokens: int = DEFAULT_MAX_TOKENS,
    ):
        from ..backends.hf import check_device

        check_device(device or "auto")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}.")
        self.name = name
        self.prompt = prompt
        self.device = device
        self.dtype = dtype
        self.max_new_tokens = max_new_tokens
        self._model: Optional[Any] = None  # both loaded on first use (_loaded)
        self._tokenizer: Optional[Any] = None

    def _loaded(self) -> Tuple[Any, Any]:
        """The tokenizer and the model, loaded on first use."""
        if self._tokenizer is None or self._model is None:
            # The inference backend's loading: same device/dtype rules and the same clear errors.
            from ..backends.hf import HuggingFaceBackend

            backend = HuggingFaceBackend(self.name, device=self.device or "auto", dtype=self.dtype)
            self._tokenizer, self._model = backend.tokenizer, backend.model
        return self._tokenizer, self._model

    @property
    def tokenizer(self):
        """The teacher model's tokenizer (loads the model on first use)."""
        return self._loaded()[0]

    def render(self, passage: str) -> str:
        """The prompt as text: through the chat template once the tokenizer is loaded and has one, else plain."""
        messages = teacher_messages(passage, self.prompt)
        tokenizer = self._tokenizer
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # No chat template (a base model): a plain system / user / assistant layout.
        return f"{messages[0]['content']}\n\n{messages[1]['content']}\n\nAnswer: "

    def render_pieces(self, passage: str) -> List[Tuple[str, bool]]:
        """The rendered prompt as ``(text, is_markup)`` pieces: the chat template's text is markup, the
        passage plain text, so a literal ``</s>`` or ``<|im_end|>`` in it cannot end the user's turn."""
        before, found, after = self.render(_PASSAGE_MARK).partition(_PASSAGE_MARK)
        if not found:  # a template that rewrites message text: the passage cannot be located
            return [(self.render(passage), True)]
        return [(before, True), (passage, False), (after, True)]

    def __call__(self, passage: str) -> str:
        import torch

        from ..backends.tokens import encode_pieces

        tokenizer, model = self._loaded()
        ids = encode_pieces(tokenizer, self.render_pieces(passage), add_special_tokens=False)
        input_ids = torch.tensor([ids], device=model.device)
        with torch.no_grad():
            output = model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                do_sample=False,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        return tokenizer.decode(output[0, len(ids) :], skip_special_tokens=True)


_PASSAGE_MARK = "\u2063UNINER-PASSAGE\u2063"  # stands for the passage while the chat template is rendered


@uniner_teachers("spacy_universalner.HFTeacher.v1")
def make_hf_teacher(
    name: str,
    prompt: str = "type",
    device: Optional[str] = None,
    dtype: Dtype = "auto",
    max_new_tokens: int = DEFAULT_MAX_TOKENS,
) -> HFTeacher:
    return HFTeacher(name, prompt, device, dtype, max_new_tokens)


class SpacyLLMTeacher:
    """A spacy-llm model (``spacy.GPT-3-5.v3``, ``spacy.Dolly.v1``...).

    spacy-llm models take one prompt string, so the system line is put before the user message,
    separated by a blank line; everything else is the paper's text.
    """

    concurrency = 1

    def __init__(self, model: str, settings: Optional[Dict[str, Any]] = None, prompt: str = "type"):
        from spacy_llm.registry import registry as llm_registry

        self.name = model
        self.prompt = prompt
        self._model = llm_registry.llm_models.get(model)(**(settings or {}))

    def __call__(self, passage: str) -> str:
        system, user = (m["content"] for m in teacher_messages(passage, self.prompt))
        responses = list(self._model([[f"{system}\n\n{user}"]]))
        answer = list(responses[0])[0]
        return answer if isinstance(answer, str) else str(answer)


@uniner_teachers("spacy_universalner.SpacyLLMTeacher.v1")
def make_spacy_llm_teacher(
    model: str, settings: Optional[Dict[str, Any]] = None, prompt: str = "type"
) -> SpacyLLMTeacher:
    return SpacyLLMTeacher(model, settings, prompt)


class GoldTeacher:
    """Answers in the teacher's format from gold annotations (offline stand-in for ChatGPT).

    ``path`` is JSONL with ``text`` and ``entities``: a list of ``{"text", "type"}`` or
    ``{"start", "end", "type"}`` objects. A passage gets the entities of every labelled text it
    overlaps (it is a substring of one, or contains it) whose mention occurs in the passage.
    """

    concurrency = 1

    def __init__(self, path: Union[str, Path]):
        self.name = f"gold:{Path(path).name}"
        self.records: List[Tuple[str, List[Tuple[str, str]]]] = []
        with Path(path).open(encoding="utf8") as file_:
            for line in file_:
                if line.strip():
                    record = json.loads(line)
                    self.records.append((record["text"], _gold_entities(record)))

    def entities(self, passage: str) -> List[Tuple[str, str]]:
        found: List[Tuple[str, str]] = []
        for text, entities in self.records:
            if passage in text or text in passage:
                for pair in entities:
                    if pair[0] in passage and pair not in found:
                        found.append(pair)
        return found

    def __call__(self, passage: str) -> str:
        return "[" + ", ".join(f"({json.dumps(m)}, {json.dumps(t)})" for m, t in self.entities(passage)) + "]"


def _gold_entities(record: Dict[str, Any]) -> List[Tuple[str, str]]:
    pairs = []
    for entity in record.get("entities", []):
        mention = entity.get("text")
        if mention is None:
            mention = record["text"][entity["start"] : entity["end"]]
        pairs.append((mention, entity["type"]))
    return pairs


@uniner_teachers("spacy_universalner.GoldTeacher.v1")
def make_gold_teacher(path: str) -> GoldTeacher:
    return GoldTeacher(path)


def build_teacher(config: Dict[str, Any]) -> Teacher:
    """A teacher from a config block ``{"@uniner_teachers": NAME, ...}`` (e.g. a ``[teacher]`` section)."""
    from spacy.util import registry

    return registry.resolve({"teacher": config})["teacher"]
