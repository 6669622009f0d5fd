"""Character offsets of generated tokens in the answer text (where confidences are read from).

From token ids and a tokenizer (the local backends), or from the token strings a server returns.
"""

from os.path import commonprefix
from typing import List, Optional, Sequence, Tuple


def offsets_from_strings(text: str, tokens: Optional[Sequence[Optional[str]]]) -> Optional[List[Tuple[int, int]]]:
    """``(start, end)`` of each token in ``text`` when the tokens spell ``text`` exactly, else None.

    Servers decode tokens in different ways (a leading space kept or not, special tokens shown or
    not); offsets that might be wrong are worse than none, so any mismatch gives None.
    """
    if not tokens or any(not isinstance(token, str) for token in tokens) or "".join(tokens) != text:  # type: ignore[arg-type]
        return None
    offsets, start = [], 0
    for token in tokens:
        offsets.append((start, start + len(token)))  # type: ignore[arg-type]
        start += len(token)  # type: ignore[arg-type]
    return offsets


def offsets_from_ids(tokenizer, ids: Sequence[int], text: Optional[str] = None) -> List[Tuple[int, int]]:
    """Character ``(start, end)`` in the decoded ``text`` of each token of ``ids``.

    Decodes growing prefixes (what a streaming detokenizer does) and keeps the part that agrees
    with the full text, so byte-level tokens that split a character share that character's span.
    """
    if text is None:
        text = tokenizer.decode(list(ids), skip_special_tokens=True)
    offsets: List[Tuple[int, int]] = []
    end = 0
    for k in range(1, len(ids) + 1):
        partial = tokenizer.decode(list(ids[:k]), skip_special_tokens=True)
        new_end = max(end, len(commonprefix([partial, text])))
        offsets.append((end, new_end))
        end = new_end
    return offsets
