"""``spacy_universalner.UniNERModel.v1``: our generation backends as a spacy-llm model.

spacy-llm models take prompt strings and return answer strings; our backends take
:class:`~spacy_universalner.prompt.Query` objects (passage prefix + label suffix) so a fast engine
can compute a passage once for all its labels. This wrapper recovers the split from each UniNER
prompt string (the passage prefix ends at the template's separator before the question), removes
duplicate prompts, and asks the backend once for all prompts of a batch of Docs, with greedy
decoding capped at ``max_new_tokens`` as UniNER's official code does.
"""

from typing import Dict, Iterable, List, Optional

from spacy_llm.registry import registry

from ..prompt import UniNERTemplate
from ..types import Backend, Query


def split_prompt(prompt: str, template: UniNERTemplate) -> Query:
    """The ``Query`` a UniNER prompt was built from; a prompt of another shape is one suffix, no prefix."""
    marker = template.separator + "USER: "
    cut = prompt.rfind(marker)
    if cut < 0:
        return Query("", prompt)
    cut += len(template.separator)
    return Query(prompt[:cut], prompt[cut:])


class UniNERModel:
    """A ``@uniner_backends`` backend behind spacy-llm's model interface (prompts per Doc in, answers per Doc out)."""

    def __init__(
        self, backend: Backend, template: UniNERTemplate, max_new_tokens: int = 256, context_length: int = 256
    ):
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}.")
        if context_length < 8:
            raise ValueError(f"context_length must be at least 8, got {context_length}.")
        self.backend = backend
        self.template = template
        self.max_new_tokens = max_new_tokens
        self._context_length = context_length

    @property
    def context_length(self) -> int:
        """The prompt budget spacy-llm shards Docs to (see :func:`make_uniner_model`)."""
        return self._context_length

    @property
    def name(self) -> str:
        return self.backend.name

    def __call__(self, prompts: Iterable[Iterable[str]]) -> Iterable[Iterable[str]]:
        per_doc: List[List[str]] = [list(doc_prompts) for doc_prompts in prompts]
        unique: Dict[str, Query] = {}
        for doc_prompts in per_doc:
            for prompt in doc_prompts:
                if prompt not in unique:
                    unique[prompt] = split_prompt(prompt, self.template)
        answers: Dict[str, str] = {}
        if unique:
            generations = self.backend(list(unique.values()), max_new_tokens=self.max_new_tokens)
            answers = {prompt: generation.text for prompt, generation in zip(unique, generations)}
        return [[answers[prompt] for prompt in doc_prompts] for doc_prompts in per_doc]


@registry.llm_models("spacy_universalner.UniNERModel.v1")
def make_uniner_model(
    backend: Optional[Backend] = None,
    template: Optional[UniNERTemplate] = None,
    max_new_tokens: int = 256,
    context_length: int = 256,
) -> UniNERModel:
    """A UniNER checkpoint run by one of our backends, for the ``llm`` component.

    backend: a ``@uniner_backends`` block (default: ``spacy_universalner.HuggingFace.v1`` with
    ``Universal-NER/UniNER-7B-type``). template: the template the prompts were built with (only its
    separator matters here). context_length: the prompt size, in spacy-llm's token estimate
    (whitespace words by default), above which spacy-llm shards a Doc. UniNER reads 2048 tokens but
    was trained on passages of at most 256 tokens, so the default keeps passages near that size.
    """
    if backend is None:
        from ..backends.hf import HuggingFaceBackend

        backend = HuggingFaceBackend()
    return UniNERModel(backend, template or UniNERTemplate(), max_new_tokens, context_length)
