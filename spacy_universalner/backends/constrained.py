"""Constrained answers: decoding may only write a JSON list of strings copied from the chunk.

The allowed outputs (character level) are

    [ " "? ]  "[]"                                   -- an empty answer, or
    [ " "? ]  "[" ITEM ( "," " "? ITEM )* "]"        -- ITEM = '"' mention '"'

followed only by EOS, where a *mention* is a non-empty substring of the passage that starts and
ends on word boundaries (no cut inside a run of letters/digits) and contains no ``"``, ``\\`` or
control character (so it needs no JSON escaping and stays on one line). Every finished answer is
therefore parsed by the official rule and every string aligns to the passage. An answer cut by
``max_new_tokens`` is still a prefix of such a list (the lenient parser reads its complete strings).

Token level: each vocabulary token is reduced to the text it appends when decoded after other
text; tokens are kept in a character trie, and the set of allowed tokens of a state is found by
walking the trie with the character automaton, pruning at the first rejected character. Tokens
whose text is not valid on its own (byte pieces of a multi-byte character) are never allowed, so
mentions with characters that only such pieces spell cannot be produced. Allowed sets are
memoized per (passage, state).
"""

from typing import Dict, FrozenSet, List, Optional, Tuple

import torch

from ..prompt import READ_REPLY
from ..types import Query

# States: ("start",), ("start_sp",), ("open",), ("in", positions, length), ("after",),
# ("comma",), ("comma_sp",), ("done",).  ``positions``: passage offsets where the mention so far
# occurs starting on a word boundary.
State = Tuple


def passage_of(query: Query) -> str:
    """The chunk text inside a UniNER passage prefix (``... USER: Text: {text} ASSISTANT: I've read ...``).

    Falls back to the whole prefix for a custom template that does not have these markers.
    """
    prefix = query.prefix
    start = prefix.find("USER: Text: ")
    end = prefix.rfind(f" ASSISTANT: {READ_REPLY}")
    if start < 0 or end < start:
        return prefix
    return prefix[start + len("USER: Text: ") : end]


def _is_word(ch: str) -> bool:
    return ch.isalnum()


class _Trie:
    __slots__ = ("children", "tokens")

    def __init__(self):
        self.children: Dict[str, "_Trie"] = {}
        self.tokens: List[int] = []


class TokenTable:
    """What each token appends to decoded text, as a trie; built once per tokenizer."""

    def __init__(self, tokenizer):
        self.vocab_size = max(len(tokenizer), getattr(tokenizer, "vocab_size", 0) or 0)
        self.eos_id = tokenizer.eos_token_id
        special = set(tokenizer.all_special_ids)
        anchor_ids = tokenizer("a", add_special_tokens=False)["input_ids"][-1:]
        anchor = tokenizer.decode(anchor_ids)
        self.root = _Trie()
        self.pieces: Dict[int, str] = {}
        for token_id in range(len(tokenizer)):
            if token_id in special:
                continue
            text = tokenizer.decode(anchor_ids + [token_id])
            if not text.startswith(anchor):
                continue
            piece = text[len(anchor) :]
            if not piece or "\ufffd" in piece:
                continue
            self.pieces[token_id] = piece
            node = self.root
            for ch in piece:
                node = node.children.setdefault(ch, _Trie())
            node.tokens.append(token_id)


class ListConstraint:
    """The automaton for one passage; ``allowed(state)`` is a bool mask over the vocabulary."""

    def __init__(self, passage: str, table: TokenTable, vocab_size: int):
        self.text = passage
        self.table = table
        self.vocab_size = vocab_size
        n = len(passage)
        self.starts: Tuple[int, ...] = tuple(
            i
            for i in range(n)
            if not passage[i].isspace() and (i == 0 or not (_is_word(passage[i - 1]) and _is_word(passage[i])))
        )
        self.ends: FrozenSet[int] = frozenset(
            j
            for j in range(1, n + 1)
            if not passage[j - 1].isspace() and (j == n or not (_is_word(passage[j - 1]) and _is_word(passage[j])))
        )
        self._masks: Dict[State, torch.Tensor] = {}

    def start(self) -> State:
        return ("start",)

    def step(self, state: State, ch: str) -> Optional[State]:
        """The state after one more character, or None if the character is not allowed."""
        kind = state[0]
        if kind == "in":
            _, positions, length = state
            if ch == '"':
                if length and any(p + length in self.ends for p in positions):
                    return ("after",)
                return None
            if ch == "\\" or ord(ch) < 32 or ord(ch) == 127:
                return None
            text = self.text
            kept = tuple(p for p in positions if p + length < len(text) and text[p + length] == ch)
            return ("in", kept, length + 1) if kept else None
        if kind in ("start", "start_sp"):
            if ch == "[":
                return ("open",)
            if ch == " " and kind == "start":
                return ("start_sp",)
            return None
        if kind == "open":
            if ch == "]":
                return ("done",)
            return ("in", self.starts, 0) if ch == '"' else None
        if kind == "after":
            if ch == ",":
                return ("comma",)
            return ("done",) if ch == "]" else None
        if kind in ("comma", "comma_sp"):
            if ch == '"':
                return ("in", self.starts, 0)
            if ch == " " and kind == "comma":
                return ("comma_sp",)
            return None
        return None  # done: only EOS

    def advance(self, state: State, token_id: int) -> State:
        piece = self.table.pieces.get(token_id)
        if piece is None:  # EOS or a token the mask never allows
            return ("done",)
        for ch in piece:
            nxt = self.step(state, ch)
            if nxt is None:
                return ("done",)
            state = nxt
        return state

    def allowed(self, state: State) -> torch.Tensor:
        mask = self._masks.get(state)
        if mask is None:
            mask = torch.zeros(self.vocab_size, dtype=torch.bool)
            ids: List[int] = []
            self._walk(self.table.root, state, ids)
            if state[0] == "done" and self.table.eos_id is not None:
                ids.append(self.table.eos_id)
            if ids:
                mask[torch.tensor(ids, dtype=torch.long)] = True
            elif self.table.eos_id is not None:  # a dead end cannot happen by construction; end cleanly
                mask[self.table.eos_id] = True
            self._masks[state] = mask
        return mask

    def _walk(self, node: _Trie, state: State, out: List[int]) -> None:
        for ch, child in node.children.items():
            nxt = self.step(state, ch)
            if nxt is None:
                continue
            out.extend(child.tokens)
            self._walk(child, nxt, out)


class ConstraintFactory:
    """Builds (and reuses, per passage) the :class:`ListConstraint` of each query."""

    def __init__(self, tokenizer, vocab_size: int):
        self.table = TokenTable(tokenizer)
        self.vocab_size = vocab_size
        self._by_passage: Dict[str, ListConstraint] = {}

    def __call__(self, query: Query) -> ListConstraint:
        passage = passage_of(query)
        constraint = self._by_passage.get(passage)
        if constraint is None:
            if len(self._by_passage) > 1024:
                self._by_passage.clear()
            constraint = self._by_passage[passage] = ListConstraint(passage, self.table, self.vocab_size)
        return constraint
