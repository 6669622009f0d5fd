"""Shared-prefix greedy decoding for UniNER queries over a Hugging Face causal LM.

UniNER asks one question per (passage, entity type), and every prompt of a passage repeats the
passage. Plain ``generate`` pays that prefill once per label and keeps finished sequences in the
batch. This engine, for each batch of queries:

1. tokenizes every full prompt exactly as ``generate``'s caller would (``tokenizer(prompt)``, BOS
   included; a passage or label holding special-token text is read as plain text,
   :func:`~.base.encode_prompts`) and takes, per chunk, the longest common *token* prefix of its prompts (tokenizing
   prefix and suffix separately may split differently at the boundary, so the split is found on
   the real token ids), always leaving at least one suffix token per query;
2. prefills each chunk's prefix once, chunks of similar prefix length together (rows are grouped
   into forward passes so as to minimize padded tokens plus a per-pass overhead, :func:`_groups`);
3. copies each chunk's KV rows to every label of that chunk (no recomputation) and prefills only
   the label suffixes, grouped by suffix length in the same way (left-padded *inside* each group's
   block: the padding mask, not contiguity, decides what is attended, and position ids count real
   tokens only, so every query sees the positions it would see alone);
4. decodes all sequences of the batch together with greedy argmax, dropping a sequence from the
   batch (cache rows, mask, positions) as soon as it is finished: at EOS, at ``max_new_tokens``,
   or, if ``stop_at_list_end``, once the official UniNER parser already has its answer
   (see :func:`list_closed`).

The KV cache (:class:`_SlotCache`) is preallocated per batch and written in place: a plain
``DynamicCache`` concatenates the whole cache at every step of every layer, which on CPU cost
more than the model's matrix products at 20 labels (fresh multi-MiB allocations each time).

The result is token-for-token what ``model.generate(do_sample=False)`` gives for the same prompts
(tests/test_engine.py checks it on tiny float32 models) as long as the model's generation config
adds no logits processors (UniNER's does not): the engine applies only EOS, optional token
suppression and the optional answer constraint (:mod:`.constrained`).

torch is imported here at module level: this module is only imported once a model is used.
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

import torch
from transformers.cache_utils import Cache, DynamicLayer

from ..parsing import parse_official, postprocess_response
from ..types import Generation, Query
from .offsets import offsets_from_ids
from .tokens import encode_prompts


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
            token_offsets=offsets_from_ids(tokenizer, self.token_ids, self.text),
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


def _groups(lengths: Sequence[int], overhead: int) -> List[Tuple[int, int]]:
    """Split rows sorted by length into contiguous ``(lo, hi)`` groups, one forward pass each.

    Minimizes the padded tokens (rows times the group's longest row) plus ``overhead`` tokens per
    extra forward pass (dynamic programming; at most ``batch_size`` rows).
    """
    n = len(lengths)
    best = [0] + [0] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        best[j], cut[j] = min((best[i] + (j - i) * lengths[j - 1] + overhead, i) for i in range(j))
    groups = []
    j = n
    while j > 0:
        groups.append((cut[j], j))
        j = cut[j]
    return groups[::-1]


class _SlotLayer(DynamicLayer):
    """One layer's keys and values in a preallocated, zero-initialized ``[rows, heads, capacity, dim]``
    buffer: a forward pass writes its new tokens in place (no ``torch.cat`` of the whole cache per
    step) into the rows and columns its :class:`_SlotCache` says, and attends to a view of them."""

    def __init__(self, owner: "_SlotCache", index: int):
        super().__init__()
        self.owner = owner
        self.index = index
        self.buf_k: Optional[torch.Tensor] = None
        self.buf_v: Optional[torch.Tensor] = None
        self.is_initialized = True

    def update(self, key_states, value_states, *args, **kwargs):
        owner = self.owner
        if self.buf_k is None:
            shape = (owner.n_rows, key_states.shape[1], owner.capacity, key_states.shape[-1])
            self.buf_k = owner.take(("k", self.index, owner.phase), shape, key_states).zero_()
            self.buf_v = owner.take(
                ("v", self.index, owner.phase), shape[:3] + (value_states.shape[-1],), value_states
            ).zero_()
        lo, hi = owner.rows
        start = owner.length
        end = start + key_states.shape[-2]
        self.buf_k[lo:hi, :, start:end] = key_states
        self.buf_v[lo:hi, :, start:end] = value_states
        self.keys = self.buf_k[lo:hi, :, :end]
        self.values = self.buf_v[lo:hi, :, :end]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.owner.length

    def get_mask_sizes(self, query_length: int) -> Tuple[int, int]:
        return self.owner.length + query_length, 0

    def batch_select_indices(self, indices) -> None:
        self.owner.select(indices)


class _SlotCache(Cache):
    """The engine's KV cache: the engine, not the model, decides which rows a forward pass writes
    (``set_rows``), from which column (``length``), and when the buffers grow or lose rows."""

    def __init__(self, num_layers: int, pool: Optional[Dict] = None):
        slots = [_SlotLayer(self, i) for i in range(num_layers)]
        super().__init__(layers=list(slots))
        self.slots = slots  # the same layers as Cache's self.layers, typed as ours
        self.pool = pool if pool is not None else {}
        self.phase = 0
        self.n_rows = 0
        self.capacity = 0
        self.length = 0
        self.rows = (0, 0)

    def take(self, key, shape, like) -> "torch.Tensor":
        """An uninitialized tensor of ``shape`` on memory kept from earlier batches when it is large
        enough: fresh multi-MiB allocations are returned to the OS when freed and page-faulted in
        again on every use, which costs more than the copies themselves on some machines."""
        numel = 1
        for d in shape:
            numel *= d
        store = self.pool.get(key)
        if store is None or store.numel() < numel or store.dtype != like.dtype or store.device != like.device:
            store = self.pool[key] = like.new_empty(numel)
        return store[:numel].view(shape)

    def start(self, n_rows: int, capacity: int) -> None:
        self.n_rows, self.capacity, self.length, self.rows = n_rows, capacity, 0, (0, n_rows)

    def set_rows(self, lo: int, hi: int) -> None:
        self.rows = (lo, hi)

    def expand(self, source_rows, width: int, capacity: int) -> None:
        """Row ``r`` of the new buffers starts with the first ``width`` columns of old row ``source_rows[r]``."""
        n = int(source_rows.shape[0])
        sources = source_rows.tolist()
        for layer in self.slots:
            if layer.buf_k is None:
                continue
            for name in ("buf_k", "buf_v"):
                old = getattr(layer, name)
                new = self.take((name, layer.index, 1), (n, old.shape[1], capacity, old.shape[3]), old)
                new[:, :, width:].zero_()  # padding columns are masked, but must hold finite values
                # Row by row, straight into the buffer: an index_select would first build a whole
                # batch-sized temporary per layer, which the heap then keeps as resident memory.
                for row, source in enumerate(sources):
                    new[row, :, :width].copy_(old[source, :, :width])
                setattr(layer, name, new)
        self.n_rows, self.capacity, self.length, self.rows = n, capacity, width, (0, n)
        self.phase = 1

    def reserve(self, tokens: int, growth: int) -> None:
        """Make room for ``tokens`` more columns, growing by at least ``growth`` at a time."""
        if self.length + tokens <= self.capacity:
            return
        extra = max(growth, self.length + tokens - self.capacity)
        for layer in self.slots:
            if layer.buf_k is None:
                continue
            for name in ("buf_k", "buf_v"):
                old = getattr(layer, name)
                setattr(layer, name, torch.cat([old, old.new_zeros(old.shape[:2] + (extra, old.shape[3]))], dim=2))
        self.capacity += extra

    def select(self, indices) -> None:
        """Keep only the rows ``indices`` (finished sequences leave the batch)."""
        for layer in self.slots:
            if layer.buf_k is None or layer.buf_v is None:  # set together, in _SlotLayer.update
                continue
            layer.buf_k = layer.buf_k.index_select(0, indices)
            layer.buf_v = layer.buf_v.index_select(0, indices)
        self.n_rows = int(indices.shape[0])
        self.rows = (0, self.n_rows)


class Constraint(Protocol):
    """What may be decoded for one query (:class:`.constrained.ListConstraint`), as an automaton whose
    states the engine only hands back: ``start()`` is the first state, ``allowed(state)`` a bool tensor over the
    vocabulary, ``advance(state, token_id)`` the state after a token."""

    def start(self) -> Any: ...

    def allowed(self, state: Any) -> torch.Tensor: ...

    def advance(self, state: Any, token_id: int) -> Any: ...


#: A constraint factory: the :class:`Constraint` of a query; see :mod:`.constrained`.
ConstraintFactory = Callable[[Query], Constraint]


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
        group_overhead_tokens: Optional[int] = None,
        growth: int = 32,
        compact_fraction: float = 0.25,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.stop_at_list_end = stop_at_list_end
        self.suppress_token_ids = list(suppress_token_ids)
        self.constraint = constraint
        # A prefill forward pass costs about this many padded tokens (None: 32 on CPU, 512 elsewhere):
        # rows are grouped into separate passes only where that saves more padding.
        self.group_overhead_tokens = group_overhead_tokens
        self.growth = max(1, growth)  # cache columns added at a time while decoding
        # Finished rows leave the batch once they are this fraction of it (0: at once). Dropping rows
        # copies every layer's KV buffers, so doing it each time one row ends costs more than
        # decoding a few finished rows for nothing (a third of the time of the generative uniner-mini,
        # the student packaged before uniner-span, on a CPU).
        if not 0.0 <= compact_fraction <= 1.0:
            raise ValueError(f"compact_fraction must be in [0, 1], got {compact_fraction}.")
        self.compact_fraction = compact_fraction
        self.eos_id = tokenizer.eos_token_id
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.eos_id or 0)
        self._pieces: Dict[int, str] = {}
        self._pool: Dict = {}  # KV buffer memory reused from batch to batch (about one batch of KV cache)

    # -- public -------------------------------------------------------------------------------
    def __call__(self, queries: Sequence[Query], max_new_tokens: int = 256) -> List[Generation]:
        return [d.to_generation(self.tokenizer) for d in self.decode(queries, max_new_tokens)]

    def decode(self, queries: Sequence[Query], max_new_tokens: int = 256) -> List[Decoded]:
        """One :class:`Decoded` per query, in order."""
        if not queries:
            return []
        encoded = encode_prompts(self.tokenizer, queries)
        groups: Dict[str, List[int]] = {}
        for i, q in enumerate(queries):
            groups.setdefault(q.prefix, []).append(i)
        # Per chunk: the token split point, at most len-1 so every query has a suffix to prefill.
        # Chunks by prefix length, longest first (less padding, and the first batch sizes the reused
        # KV buffers: later, shorter batches fit in them instead of growing the heap batch by batch);
        # a chunk with more labels than batch_size is split, and each part prefills the prefix again.
        parts: List[Tuple[int, List[int]]] = []
        for members in groups.values():
            rows = [encoded[i] for i in members]
            split = min(_common_prefix_length(rows), min(len(r) for r in rows) - 1)
            for s in range(0, len(members), self.batch_size):
                parts.append((split, members[s : s + self.batch_size]))
        parts.sort(key=lambda p: (-p[0], p[1][0]))
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
        decoded = [d for d in results if d is not None]
        assert len(decoded) == len(queries), "every query is finished by _run_batch"
        return decoded

    # -- internals ----------------------------------------------------------------------------
    def _piece(self, token_id: int) -> str:
        piece = self._pieces.get(token_id)
        if piece is None:
            piece = self._pieces[token_id] = self.tokenizer.decode([token_id])
        return piece

    @torch.inference_mode()
    def _run_batch(self, parts, queries, encoded, max_new_tokens, results) -> None:
        overhead = self.group_overhead_tokens
        if overhead is None:
            overhead = 32 if self.model.device.type == "cpu" else 512
        cache = _SlotCache(self._num_layers(), self._pool)
        parts = sorted(parts, key=lambda p: p[0])
        p_width, p_mask = self._prefill_prefixes(parts, encoded, cache, overhead)
        seq_index, logits, mask = self._prefill_suffixes(
            parts, encoded, cache, p_width, p_mask, max_new_tokens, overhead
        )
        self._decode(queries, seq_index, logits, mask, cache, max_new_tokens, results)

    def _prefill_prefixes(self, parts, encoded, cache: "_SlotCache", overhead: int) -> Tuple[int, torch.Tensor]:
        """1. One prefill per chunk into a prefix block of ``p_width`` columns; chunks of similar prefix
        length share a forward pass, each group padded to its own longest prefix only. Returns the
        block's width and its attention mask (one row per chunk)."""
        device = self.model.device
        prefixes = [encoded[members[0]][:split] for split, members in parts]
        p_width = max(len(p) for p in prefixes)
        p_mask = torch.zeros((len(parts), p_width), dtype=torch.long)
        if p_width > 0:
            cache.start(len(parts), p_width)
            for lo, hi in _groups([len(p) for p in prefixes], overhead):
                width = len(prefixes[hi - 1])
                if width == 0:
                    continue
                g_ids, g_mask = _left_pad(prefixes[lo:hi], self.pad_id, "cpu")
                p_mask[lo:hi, :width] = g_mask
                g_mask = g_mask.to(device)
                cache.set_rows(lo, hi)
                _forward(self.model, g_ids.to(device), g_mask, (g_mask.cumsum(-1) - 1).clamp(min=0), cache)
        return p_width, p_mask

    def _prefill_suffixes(
        self,
        parts,
        encoded,
        cache: "_SlotCache",
        p_width: int,
        p_mask: torch.Tensor,
        max_new_tokens: int,
        overhead: int,
    ) -> Tuple[List[int], torch.Tensor, torch.Tensor]:
        """2. Every query gets a copy of its chunk's prefix rows (no recomputation); the label suffixes are
        prefilled with the queries sorted by suffix length, grouped likewise. Returns each batch row's
        query, the first decoding step's logits and the attention mask."""
        device = self.model.device
        rows_info = sorted(
            ((len(encoded[i]) - split, g, i) for g, (split, members) in enumerate(parts) for i in members),
            key=lambda r: r[0],
        )
        seq_index = [i for _, _, i in rows_info]
        suffixes = [encoded[i][parts[g][0] :] for _, g, i in rows_info]
        chunk_row = torch.tensor([g for _, g, _ in rows_info], dtype=torch.long)
        n = len(seq_index)
        s_width = max(len(s) for s in suffixes)
        mask = torch.zeros((n, p_width + s_width), dtype=torch.long)
        mask[:, :p_width] = p_mask.index_select(0, chunk_row)
        groups = _groups([len(s) for s in suffixes], overhead)
        for lo, hi in groups:  # each group's suffixes left-padded inside the group's own width
            width = len(suffixes[hi - 1])
            for r in range(lo, hi):
                mask[r, p_width + width - len(suffixes[r]) : p_width + width] = 1
        cache.expand(chunk_row.to(device), p_width, p_width + s_width + min(max_new_tokens, self.growth))
        mask = mask.to(device)
        logits_parts = []
        for lo, hi in groups:
            width = len(suffixes[hi - 1])
            g_ids, _ = _left_pad(suffixes[lo:hi], self.pad_id, device)
            g_mask = mask[lo:hi, : p_width + width]
            g_pos = (g_mask.cumsum(-1) - 1).clamp(min=0)[:, p_width:]
            cache.set_rows(lo, hi)
            logits_parts.append(_forward(self.model, g_ids, g_mask, g_pos, cache))
        cache.set_rows(0, n)
        cache.length = p_width + s_width
        return seq_index, (torch.cat(logits_parts) if len(logits_parts) > 1 else logits_parts[0]), mask

    def _decode(
        self,
        queries,
        seq_index: List[int],
        logits: torch.Tensor,
        mask: torch.Tensor,
        cache: "_SlotCache",
        max_new_tokens: int,
        results,
    ) -> None:
        """3. Greedy decoding; finished rows leave the batch (in groups: see ``compact_fraction``)."""
        device = self.model.device
        n = len(seq_index)
        last_pos = mask.sum(-1) - 1
        ids: List[List[int]] = [[] for _ in range(n)]
        logps: List[List[float]] = [[] for _ in range(n)]
        # Read only when self.constraint is set (then one per batch row).
        constraints: List[Constraint] = []
        states: List[Any] = []
        if self.constraint is not None:
            constraints = [self.constraint(queries[i]) for i in seq_index]
            states = [c.start() for c in constraints]
        # What each batch row decodes: a position in ids/logps, or -1 once it finished (the row is
        # still computed, and ignored, until the batch is compacted).
        rows = list(range(n))
        suppress = torch.tensor(self.suppress_token_ids, dtype=torch.long, device=device)
        for step in range(max_new_tokens):
            if suppress.numel():
                logits[:, suppress] = float("-inf")
            logprobs = torch.log_softmax(logits, dim=-1)
            if self.constraint is not None:
                anything = torch.ones(logits.shape[-1], dtype=torch.bool)
                allowed = torch.stack([constraints[a].allowed(states[a]) if a >= 0 else anything for a in rows])
                choice = logits.masked_fill(~allowed.to(device), float("-inf")).argmax(-1)
            else:
                choice = logits.argmax(-1)
            chosen_lp = logprobs.gather(1, choice[:, None])[:, 0].tolist()
            choice_list = choice.tolist()
            live: List[int] = []
            for row, a in enumerate(rows):
                if a < 0:
                    continue
                token = choice_list[row]
                if token != self.eos_id:
                    ids[a].append(token)
                    logps[a].append(chosen_lp[row])
                    if self.constraint is not None:
                        states[a] = constraints[a].advance(states[a], token)
                reason = self._stop_reason(token, ids[a], max_new_tokens)
                if reason is None:
                    live.append(row)
                else:
                    self._finish(results, seq_index[a], ids[a], logps[a], reason)
                    rows[row] = -1
            if not live:
                break
            if len(rows) - len(live) >= max(1.0, self.compact_fraction * len(rows)):
                keep_t = torch.tensor(live, dtype=torch.long, device=device)
                cache.select(keep_t)
                mask = mask.index_select(0, keep_t)
                last_pos = last_pos.index_select(0, keep_t)
                choice = choice.index_select(0, keep_t)
                rows = [rows[r] for r in live]
            cache.reserve(1, self.growth)
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            last_pos = last_pos + 1
            logits = _forward(self.model, choice[:, None], mask, last_pos[:, None], cache)
            cache.length += 1

    def _stop_reason(self, token: int, ids: List[int], max_new_tokens: int) -> Optional[str]:
        """Why a query stops after ``token`` (already appended to ``ids`` unless it is EOS), or None."""
        if token == self.eos_id:
            return "eos"
        if (
            self.stop_at_list_end
            and "]" in self._piece(token)
            and list_closed(self.tokenizer.decode(ids, skip_special_tokens=True))
        ):
            return "list_end"
        if len(ids) >= max_new_tokens:
            return "length"
        return None

    def _finish(self, results, index: int, ids: List[int], logps: List[float], reason: str) -> None:
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        results[index] = Decoded(list(ids), list(logps), text, reason)

    def _num_layers(self) -> int:
        config = self.model.config
        config = config.get_text_config() if hasattr(config, "get_text_config") else config
        return config.num_hidden_layers
