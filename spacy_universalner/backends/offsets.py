"""Character offsets of generated tokens, for backends that get token strings rather than ids."""
from typing import List, Optional, Sequence, Tuple


def token_offsets(text: str, tokens: Optional[Sequence[Optional[str]]]) -> Optional[List[Tuple[int, int]]]:
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
