"""The shared-prefix engine gives exactly the greedy tokens of plain ``model.generate``.

A random-weight float32 LLaMA answers gibberish, which is what we want here: long, varied outputs
that exercise every decoding step. A second copy of it, edited so that EOS often wins, checks
sequences that finish early and leave the batch.
"""

import random

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from spacy_universalner.backends.engine import SharedPrefixEngine  # noqa: E402
from spacy_universalner.backends.offsets import offsets_from_ids  # noqa: E402
from spacy_universalner.prompt import UniNERTemplate  # noqa: E402

TEXTS = [
    "Bill Gates founded Microsoft.",
    "Guido van Rossum created Python while at CWI in Amsterdam, the Netherlands, in 1991.",
    "Aspirin reduces the risk of heart attack.",
    "The film was directed by Steven Spielberg and stars Tom Hanks as a lawyer in New York; it won two awards.",
]
LABELS = ["person", "organization", "location", "programming language", "Restaurant Name", "award"]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path):
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model_path)
    tok.padding_side = "left"
    return tok


@pytest.fixture(scope="module")
def model(tiny_model_path):
    return transformers.AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def eager_stopper(tiny_model_path, tokenizer):
    """The tiny model with EOS's output row set to that of a common token: EOS wins where that token would."""
    m = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32).eval()
    engine = SharedPrefixEngine(m, tokenizer, stop_at_list_end=False)
    first = [d.token_ids for d in engine.decode(_queries(TEXTS, LABELS), 30)]
    # A token that some answers produce after their third token and others never do.
    seen = {}
    for n, ids in enumerate(first):
        for t in set(ids[3:]):
            seen.setdefault(t, set()).add(n)
    token = min(seen, key=lambda t: abs(len(seen[t]) - len(first) / 2))
    with torch.no_grad():
        m.lm_head.weight[tokenizer.eos_token_id] = m.lm_head.weight[token] * 1.01
    return m


def _queries(texts, labels, shuffle_seed=None):
    template = UniNERTemplate()
    queries = [template.query(t, label) for t in texts for label in labels]
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(queries)
    return queries


def _generate_ids(model, tokenizer, queries, max_new_tokens):
    """Reference: one batched, left-padded greedy ``generate`` call; ids cut at the first EOS."""
    enc = tokenizer([q.prompt for q in queries], return_tensors="pt", padding=True)
    with torch.inference_mode():
        out = model.generate(
            **enc,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    result = []
    for row in out[:, enc["input_ids"].shape[1] :].tolist():
        result.append(row[: row.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in row else row)
    return result


def _engine_ids(model, tokenizer, queries, max_new_tokens, batch_size):
    engine = SharedPrefixEngine(model, tokenizer, batch_size=batch_size, stop_at_list_end=False)
    return [d.token_ids for d in engine.decode(queries, max_new_tokens)]


_ONE_BY_ONE = {}  # query -> reference ids, shared by the parametrized runs


@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_same_tokens_as_one_generate_call_per_query(model, tokenizer, batch_size):
    # Ragged passages, six labels each, in shuffled order: batches mix chunks and split chunks.
    queries = _queries(TEXTS, LABELS, shuffle_seed=batch_size)
    for q in queries:
        if q not in _ONE_BY_ONE:
            _ONE_BY_ONE[q] = _generate_ids(model, tokenizer, [q], 24)[0]
    expected = [_ONE_BY_ONE[q] for q in queries]
    assert _engine_ids(model, tokenizer, queries, 24, batch_size) == expected
    assert all(len(ids) == 24 for ids in expected)  # the random model never stops: every step is compared


def test_same_tokens_as_batched_left_padded_generate(model, tokenizer):
    queries = _queries(TEXTS[:3], LABELS[:4], shuffle_seed=1)
    assert _engine_ids(model, tokenizer, queries, 16, 7) == _generate_ids(model, tokenizer, queries, 16)


@pytest.mark.parametrize("max_new_tokens", [1, 2, 9])
def test_max_new_tokens_caps_like_generate(model, tokenizer, max_new_tokens):
    queries = _queries(TEXTS[:2], LABELS[:3])
    got = _engine_ids(model, tokenizer, queries, max_new_tokens, 4)
    assert got == _generate_ids(model, tokenizer, queries, max_new_tokens)
    assert {len(ids) for ids in got} == {max_new_tokens}


def test_one_label_and_one_query(model, tokenizer):
    queries = _queries(TEXTS, ["person"])
    assert _engine_ids(model, tokenizer, queries, 12, 16) == _generate_ids(model, tokenizer, queries, 12)
    assert _engine_ids(model, tokenizer, queries[:1], 12, 16) == _generate_ids(model, tokenizer, queries[:1], 12)


@pytest.fixture(scope="module")
def eager_expected(eager_stopper, tokenizer):
    return [_generate_ids(eager_stopper, tokenizer, [q], 30)[0] for q in _queries(TEXTS, LABELS, shuffle_seed=3)]


# compact_fraction 0: finished rows leave at once; 0.25 (default): once they are a quarter of the
# batch, decoded for nothing until then; 1: never, the batch keeps its size to the end.
@pytest.mark.parametrize("compact_fraction", [0.0, 0.25, 1.0])
def test_sequences_that_stop_early_leave_the_batch_with_the_same_tokens(
    eager_stopper, eager_expected, tokenizer, compact_fraction
):
    queries = _queries(TEXTS, LABELS, shuffle_seed=3)
    expected = eager_expected
    engine = SharedPrefixEngine(
        eager_stopper, tokenizer, batch_size=12, stop_at_list_end=False, compact_fraction=compact_fraction
    )
    decoded = engine.decode(queries, 30)
    assert [d.token_ids for d in decoded] == expected
    reasons = [d.stop_reason for d in decoded]
    assert "eos" in reasons and "length" in reasons  # both kinds of ending were exercised
    assert all(len(d.token_ids) < 30 for d in decoded if d.stop_reason == "eos")


def test_generation_text_logprobs_and_offsets_agree(model, tokenizer):
    queries = _queries(TEXTS[:1], LABELS[:2])
    engine = SharedPrefixEngine(model, tokenizer, stop_at_list_end=False)
    for decoded, generation in zip(engine.decode(queries, 10), engine(queries, 10)):
        assert generation.text == tokenizer.decode(decoded.token_ids, skip_special_tokens=True)
        assert len(generation.token_logprobs) == len(generation.token_offsets) == 10
        assert all(lp <= 0 for lp in generation.token_logprobs)
        # Offsets tile the text from 0 to its end, in order.
        assert generation.token_offsets[0][0] == 0 and generation.token_offsets[-1][1] == len(generation.text)
        assert all(a[1] == b[0] for a, b in zip(generation.token_offsets, generation.token_offsets[1:]))


def test_logprobs_match_generate_scores(model, tokenizer):
    queries = _queries(TEXTS[:2], LABELS[:2])
    enc = tokenizer([q.prompt for q in queries], return_tensors="pt", padding=True)
    with torch.inference_mode():
        out = model.generate(
            **enc, do_sample=False, max_new_tokens=6, pad_token_id=0, return_dict_in_generate=True, output_scores=True
        )
        ref = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
    engine = SharedPrefixEngine(model, tokenizer, stop_at_list_end=False)
    for decoded, row in zip(engine.decode(queries, 6), ref.tolist()):
        assert decoded.token_logprobs == pytest.approx(row, abs=1e-4)


def test_token_offsets_of_a_multibyte_character(tokenizer):
    ids = tokenizer("Zürich ]", add_special_tokens=False)["input_ids"]
    text = tokenizer.decode(ids)
    offsets = offsets_from_ids(tokenizer, ids, text)
    assert offsets[-1][1] == len(text) == len("Zürich ]")
    assert all(start <= end for start, end in offsets)


@pytest.mark.parametrize("overhead, growth", [(0, 3), (10**6, 1), (None, 32)])
def test_grouped_prefills_and_cache_growth_keep_the_same_tokens(model, tokenizer, overhead, growth):
    # overhead 0: every distinct prefix / suffix length gets its own forward pass; 10**6: one pass
    # each; small growth: the preallocated cache is grown many times while decoding.
    queries = _queries(TEXTS, LABELS, shuffle_seed=7)
    for q in queries:
        if q not in _ONE_BY_ONE:
            _ONE_BY_ONE[q] = _generate_ids(model, tokenizer, [q], 24)[0]
    engine = SharedPrefixEngine(
        model, tokenizer, batch_size=64, stop_at_list_end=False, group_overhead_tokens=overhead, growth=growth
    )
    assert [d.token_ids for d in engine.decode(queries, 24)] == [_ONE_BY_ONE[q] for q in queries]


def test_groups_split_sorted_rows_where_padding_costs_more_than_a_pass():
    from spacy_universalner.backends.engine import _groups

    assert _groups([5, 5, 5], 0) == [(0, 3)]
    assert _groups([1, 1, 1, 1, 100], 10) == [(0, 4), (4, 5)]
    assert _groups([1, 1, 1, 1, 100], 10**6) == [(0, 5)]
    assert _groups([3], 32) == [(0, 1)]


def test_constrained_decoding_gives_the_same_answers_whenever_finished_rows_leave(eager_stopper, tokenizer):
    from spacy_universalner.backends.constrained import ConstraintFactory

    queries = _queries(TEXTS, LABELS, shuffle_seed=3)
    answers = []
    for fraction in (0.0, 1.0):
        engine = SharedPrefixEngine(
            eager_stopper,
            tokenizer,
            batch_size=12,
            stop_at_list_end=False,
            constraint=ConstraintFactory(tokenizer, len(tokenizer)),
            compact_fraction=fraction,
        )
        answers.append([d.token_ids for d in engine.decode(queries, 30)])
    assert answers[0] == answers[1]
    assert len({len(ids) for ids in answers[0]}) > 1  # rows did finish at different steps


def test_compact_fraction_outside_0_1_is_refused(model, tokenizer):
    with pytest.raises(ValueError, match="compact_fraction"):
        SharedPrefixEngine(model, tokenizer, compact_fraction=1.5)
