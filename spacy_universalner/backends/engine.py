"""Shared-prefix greedy decoding for UniNER queries over a Hugging Face causal LM.

UniNER asks one question per (passage, entity type), and every prompt of a passage repeats the
passage. Plain ``generate`` pays that prefill once per label and keeps finished sequences in the
batch. This engine, for each batch of queries:

1. tokenizes every full prompt exactly as ``generate``'s caller would (``tokenizer(prompt)``, BOS
   included) and takes, per chunk, the longest common *token* prefix of its prompts (tokenizing
   prefix and suffix separately may split differently at the boundary, so the split is found on
   the real token ids), always leaving at least one suffix token per query;
2. prefills each chunk's prefix once (left-padded, several chunks per forward pass);
3. copies each chunk's KV cache rows to every label of that chunk (``index_select``; no
   recomputation) and prefills only the label suffixes (left-padded *inside* the suffix block: the
   padding mask, not contiguity, decides what is attended, and position ids count real tokens only,
   so every query sees the positions it would see alone);
4. decodes all sequences of the batch together with greedy argmax, dropping a sequence from the
   batch (cache rows, mask, positions) as soon as it is finished: at EOS, at ``max_new_tokens``,
   or, if ``stop_at_list_end``, once the official UniNER parser already has its answer
   (see :func:`list_closed`).

The result is token-for-token what ``model.generate(do_sample=False)`` gives for the same prompts
(tests/test_engine.py checks it on tiny float32 models) as long as the model's generation config
adds no logits processors (UniNER's does not): the engine applies only EOS, optional token
suppression and the optional answer constraint (:mod:`.constrained`).

torch is imported here at module level: this module is only imported once a model is used.
"""
from dataclasses import dataclass
from os.path import commonprefix
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ..parsing import parse_official, postprocess_response
from ..prompt import Query
from .base import Generation


def list_closed(text: str) -> bool:
    """Whether UniNER's official parser already has its final answer for ``text``.

    The official rule reads ``postprocess_response(text)`` (the text after the last
    ``ASSISTANT:``, stripped), takes the first ``[`` at position 0 up to the *first* ``]`` on the
    same line (even one inside a string), and ``json.loads`` it. Once that succeeds, tokens
    generated afterwards cannot change the slice, so decoding may stop. The one exception is a
    later ``ASSISTANT:`` in the generated text, which would move the start of the answer; a UniNER
    model ends its answer with EOS right after the list, so this is accepted and documented.
    If the official parse fails (text before the list, invalid JSON), we keep decoding: the
    lenient fallback looks at the whole answer.
    """
    return parse_official(postprocess_response(text)) is not None


def token_offsets(tokenizer, ids: Sequence[int], text: Optional[str] = None) -> List[Tuple[int, int]]:
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


@dataclass
class Decoded:
    """One finished sequence: generated ids (EOS excluded), their log-probabilities, the decoded text."""

    token_ids: List[int]
    token_logprobs: List[float]
    text: str
    stop_reason: str  # "eos", "list_end" or "length"

    def to_generation(self, tokenizer) -> Generation:
        return Generation(
            text=self.text,
            token_logprobs=list(self.token_logprobs),
            token_offsets=token_offsets(tokenizer, self.token_ids, self.text),
        )


def _cache_kwarg(model) -> str:
    """transformers 5.x names the forward's cache argument ``cache``; older versions ``past_key_values``."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _forward(model, ids, mask, positions, cache):
    """One forward pass that returns the last position's logits (float32) and fills ``cache`` in place."""
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
        **{_cache_kwarg(model): cache},
    )
    return out.logits[:, -1, :].float()


def _left_pad(rows: List[List[int]], pad_id: int, device) -> Tuple["torch.Tensor", "torch.Tensor"]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r) :] = 1
    return ids.to(device), mask.to(device)


def _common_prefix_length(rows: List[List[int]]) -> int:
    n = min(len(r) for r in rows)
    first = rows[0]
    for k in range(n):
        if any(r[k] != first[k] for r in rows[1:]):
            return k
    return n


#: A constraint factory: given a query, an object with ``start()``, ``allowed(state)`` (a bool
#: tensor over the vocabulary) and ``advance(state, token_id)``; see :mod:`.constrained`.
ConstraintFactory = Callable[[Query], object]


class SharedPrefixEngine:
    """Greedy decoding of many (chunk, label) queries with one prefix prefill per chunk."""

    def __init__(
        self,
        model,
        tokenizer,
        batch_size: int = 16,
        stop_at_list_end: bool = True,
        suppress_token_ids: Sequence[int] = (),
        constraint: Optional[ConstraintFactory] = None,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.stop_at_list_end = stop_at_list_end
        self.suppress_token_ids = list(suppress_token_ids)
        self.constraint = constraint
        self.eos_id = tokenizer.eos_token_id
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.eos_id or 0)
        self._pieces: Dict[int, str] = {}

    # -- public -------------------------------------------------------------------------------
    def __call__(self, queries: Sequence[Query], max_new_tokens: int = 256) -> List[Generation]:
        return [d.to_generation(self.tokenizer) for d in self.decode(queries, max_new_tokens)]

    def decode(self, queries: Sequence[Query], max_new_tokens: int = 256) -> List[Decoded]:
        """One :class:`Decoded` per query, in order."""
        if not queries:
            return []
        encoded = self.tokenizer([q.prompt for q in queries])["input_ids"]
        groups: Dict[str, List[int]] = {}
        for i, q in enumerate(queries):
            groups.setdefault(q.prefix, []).append(i)
        # Per chunk: the token split point, at most len-1 so every query has a suffix to prefill.
        # Chunks by prefix length (less padding); a chunk with more labels than batch_size is split,
        # and each part prefills the prefix again.
        parts: List[Tuple[int, List[int]]] = []
        for members in groups.values():
            rows = [encoded[i] for i in members]
            split = min(_common_prefix_length(rows), min(len(r) for r in rows) - 1)
            for s in range(0, len(members), self.batch_size):
                parts.append((split, members[s : s + self.batch_size]))
        parts.sort(key=lambda p: (p[0], p[1][0]))
        results: List[Optional[Decoded]] = [None] * len(queries)
        batch: List[Tuple[int, List[int]]] = []
        size = 0
        for part in parts:
            if batch and size + len(part[1]) > self.batch_size:
                self._run_batch(batch, queries, encoded, max_new_tokens, results)
                batch, size = [], 0
            batch.append(part)
            size += len(part[1])
        if batch:
            self._run_batch(batch, queries, encoded, max_new_tokens, results)
        return results  # type: ignore[return-value]

    # -- internals ----------------------------------------------------------------------------
    def _piece(self, token_id: int) -> str:
        piece = self._pieces.get(token_id)
        if piece is None:
            piece = self._pieces[token_id] = self.tokenizer.decode([token_id])
        return piece

    @torch.inference_mode()
    def _run_batch(self, parts, queries, encoded, max_new_tokens, results) -> None:
        device = self.model.device
        tokenizer = self.tokenizer
        # 1. One prefill per chunk.
        prefixes = [encoded[members[0]][:split] for split, members in parts]
        cache = self._new_cache()
        if max(len(p) for p in prefixes) > 0:
            p_ids, p_mask = _left_pad(prefixes, self.pad_id, device)
            p_pos = (p_mask.cumsum(-1) - 1).clamp(min=0)
            _forward(self.model, p_ids, p_mask, p_pos, cache)
        else:  # no shared tokens at all (should not happen with BOS): an empty prefix block
            p_mask = torch.zeros((len(parts), 0), dtype=torch.long, device=device)
        # 2. Expand the prefix rows to every query of the chunk, prefill the suffixes.
        seq_index: List[int] = []  # query index of each row
        chunk_row: List[int] = []
        suffixes: List[List[int]] = []
        for g, (split, members) in enumerate(parts):
            for i in members:
                seq_index.append(i)
                chunk_row.append(g)
                suffixes.append(encoded[i][split:])
        rows = torch.tensor(chunk_row, dtype=torch.long, device=device)
        if p_mask.shape[1] > 0:
            cache.batch_select_indices(rows)
        s_ids, s_mask = _left_pad(suffixes, self.pad_id, device)
        mask = torch.cat([p_mask.index_select(0, rows), s_mask], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = _forward(self.model, s_ids, mask, positions[:, -s_ids.shape[1] :], cache)
        last_pos = positions[:, -1]
        # 3. Greedy decoding; finished rows leave the batch.
        n = len(seq_index)
        ids: List[List[int]] = [[] for _ in range(n)]
        logps: List[List[float]] = [[] for _ in range(n)]
        states = [None] * n
        constraints = [None] * n
        if self.constraint is not None:
            constraints = [self.constraint(queries[i]) for i in seq_index]
            states = [c.start() for c in constraints]
        active = list(range(n))  # positions in ids/logps of the rows still in the batch
        suppress = torch.tensor(self.suppress_token_ids, dtype=torch.long, device=device)
        for step in range(max_new_tokens):
            if suppress.numel():
                logits[:, suppress] = float("-inf")
            logprobs = torch.log_softmax(logits, dim=-1)
            if self.constraint is not None:
                allowed = torch.stack([constraints[a].allowed(states[a]) for a in active]).to(device)
                choice = logits.masked_fill(~allowed, float("-inf")).argmax(-1)
            else:
                choice = logits.argmax(-1)
            chosen_lp = logprobs.gather(1, choice[:, None])[:, 0].tolist()
            choice_list = choice.tolist()
            keep: List[int] = []
            for row, a in enumerate(active):
                token = choice_list[row]
                if token == self.eos_id:
                    self._finish(results, seq_index[a], ids[a], logps[a], "eos")
                    continue
                ids[a].append(token)
                logps[a].append(chosen_lp[row])
                if self.constraint is not None:
                    states[a] = constraints[a].advance(states[a], token)
                if self.stop_at_list_end and "]" in self._piece(token):
                    if list_closed(tokenizer.decode(ids[a], skip_special_tokens=True)):
                        self._finish(results, seq_index[a], ids[a], logps[a], "list_end")
                        continue
                if len(ids[a]) >= max_new_tokens:
                    self._finish(results, seq_index[a], ids[a], logps[a], "length")
                    continue
                keep.append(row)
            if not keep:
                break
            if len(keep) < len(active):
                keep_t = torch.tensor(keep, dtype=torch.long, device=device)
                cache.batch_select_indices(keep_t)
                mask = mask.index_select(0, keep_t)
                last_pos = last_pos.index_select(0, keep_t)
                choice = choice.index_select(0, keep_t)
                active = [active[r] for r in keep]
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            last_pos = last_pos + 1
            logits = _forward(self.model, choice[:, None], mask, last_pos[:, None], cache)

    def _finish(self, results, index: int, ids: List[int], logps: List[float], reason: str) -> None:
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        results[index] = Decoded(list(ids), list(logps), text, reason)

    def _new_cache(self):
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)
