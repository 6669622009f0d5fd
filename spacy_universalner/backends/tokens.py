"""Prompts as token ids for tokenizer-based backends: passage text can never inject conversation turns.

``Hugging Face``, ``vLLM`` and the OpenAI-compatible backends tokenize UniNER prompts here, so a literal
``</s>`` in a passage is read as text, not as the end of the user's turn.
"""

from typing import List, Optional, Sequence, Tuple, Union

from ..types import Query


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
        prompts.append(
            encode_pieces(tokenizer, pieces, specials=specials)
            if _plain_holds_special(pieces, specials)
            else query.prompt
        )
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
