"""Seeded fuzzing: hostile answers, cache files and configs never crash the component or lose data.

Three properties, each over a few thousand seeded cases (the whole file runs in well under 30 s):

1. **Answers.** Random and adversarial model answers (deep nesting, huge literals, "ASSISTANT:" inside a
   mention, lone surrogates, special-token text, mentions that overlap existing entities), half of them with
   a server's token log-probabilities (NaN, infinite, positive, huge integers among them), go through
   ``nlp.pipe`` under random settings: no exception escapes, every Doc keeps each entity it already had
   (``overwrite_ents = false``), every span lies on the Doc's tokens, every score is in [0, 1] or None,
   and every Doc can be saved (``DocBin`` with user data).
2. **Cache files.** Valid entries mixed with torn lines, bytes that are not UTF-8, fields of the wrong
   type and deep nesting: every valid entry is read back, a pipe whose prompts are all cached never
   calls the model, and answers appended afterwards are read back together with the old ones.
3. **Configs.** Random values for every setting: ``add_pipe`` either builds the component or raises a
   ``ValueError`` (a message naming the setting), never another exception; a built one runs.
"""

import json
import random

import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span

from spacy_universalner.backends.openai import generation_from_choice
from spacy_universalner.cache import ResponseCache
from spacy_universalner.distill.tuples import parse_tuples
from spacy_universalner.parsing import official_items, parse_answer
from spacy_universalner.prompt import UniNERTemplate
from spacy_universalner.registry import uniner_backends
from spacy_universalner.testing import KeywordBackend
from spacy_universalner.types import Generation

SEED = 14
WORDS = [
    "Alice",
    "met",
    "Bob",
    "in",
    "Köln",
    "東京",
    "😀",
    "</s>",
    "ASSISTANT:",
    "USER:",
    "[",
    "]",
    '"',
    "'",
    "\\",
    "O'Neil",
    "Mr.",
    "U.S.",
    "New",
    "York",
    "-",
    ",",
    "\u200b",
    "é",
    "1990",
]
FRAGMENTS = [
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    '"',
    "'",
    ",",
    ":",
    "\\",
    "\\u",
    "\\ud800",
    "null",
    "1e999",
    "ASSISTANT:",
    "USER:",
    "</s>",
    "\n",
    " ",
    "[]",
    '["',
    '"]',
    "Alice",
    "Bob met",
    "\x00",
    "\ud800",
    "😀",
]
ADVERSARIAL = [
    '["Alice", "ASSISTANT:"]',
    "[" * 3000,
    "]" * 3000,
    '[{"k": ' * 480 + "1" + "}]" * 480,
    "[" + "(1,2)," * 20000 + "]",
    "[" + "{1:2}," * 20000 + "]",
    '["' + "A" * 30000 + '"]',
    "['Alice met', 'Bob']",
    '["Bob"] USER: and? ASSISTANT: ["Alice met"]',
    '["Alice met Bob"]',
    '["\ud800", "Bob"]',
    '["-" * 10]',
    "[" + "-" * 5000 + "1]",
    '["Alice", "Bob", ',
    "[1, null, true, {}, []]",
    '</s>USER: What describes person in the text? ASSISTANT: ["Alice"]',
    '[["Alice", "person"], ("Bob", "person")]',
]


#: Token log-probabilities a server may send: ordinary ones, and numbers that are none (issue 27: 1000 crashed).
LOGPROBS = [
    -0.01,
    -0.7,
    -3.0,
    0.0,
    -0.0,
    1e-7,
    -1e308,
    1000,
    1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    10**400,
    -(10**400),
    True,
    None,
    "x",
    [1],
]


def server_generation(rng: random.Random, answer: str) -> Generation:
    """``answer`` as a completions server returns it, read by the OpenAI-compatible backend: half the time with
    random token log-probabilities (a random mix of ordinary and hostile numbers) on random token cuts."""
    if rng.random() < 0.5 or not answer:
        return Generation(answer)
    cuts = sorted({0, len(answer), *(rng.randrange(len(answer)) for _ in range(rng.randint(0, 8)))})
    tokens = [answer[a:b] for a, b in zip(cuts, cuts[1:])]
    pool = LOGPROBS if rng.random() < 0.5 else LOGPROBS[:3]
    choice = {"text": answer, "logprobs": {"tokens": tokens, "token_logprobs": [rng.choice(pool) for _ in tokens]}}
    return generation_from_choice(choice)


@uniner_backends("test.Fuzz.v1")
def make_fuzz(forbidden: bool = False, seed: int = SEED) -> KeywordBackend:
    """Answers each query with a :func:`random_answer` as a server sends it; ``forbidden``: any answer is an error."""
    rng = random.Random(seed)
    return KeywordBackend(
        name="fuzz", reply=lambda prompt: server_generation(rng, random_answer(rng, prompt)), forbidden=forbidden
    )


def random_answer(rng: random.Random, prompt: str) -> str:
    """A mix of the passage's own words (so spans align and overlap), list syntax and garbage."""
    roll = rng.random()
    if roll < 0.15:
        return rng.choice(ADVERSARIAL)
    passage = prompt.split("USER: Text: ", 1)[-1].split(" ASSISTANT: I've read", 1)[0]
    words = passage.split() or ["x"]
    if roll < 0.6:  # a well-formed list of passage substrings, some overlapping
        mentions = []
        for _ in range(rng.randint(0, 4)):
            start = rng.randrange(len(words))
            mentions.append(" ".join(words[start : start + rng.randint(1, 3)]))
        return json.dumps(mentions, ensure_ascii=rng.random() < 0.5)
    return "".join(rng.choice(FRAGMENTS + words) for _ in range(rng.randint(0, 30)))


def random_doc(nlp, rng: random.Random) -> Doc:
    """A Doc of random words with some existing, non-overlapping entities."""
    doc = nlp.make_doc(" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 20))))
    ents, position = [], 0
    while position < len(doc):
        start = position + rng.randint(0, 4)
        end = min(len(doc), start + rng.randint(1, 3))
        if start < end and rng.random() < 0.5:
            ents.append(Span(doc, start, end, label=rng.choice(["GPE", "EXISTING"])))
        position = end + 1
    doc.ents = ents
    return doc


def test_random_and_adversarial_answers_never_crash_and_keep_existing_entities():
    rng = random.Random(SEED)
    nlp = spacy.blank("en")  # one, reused: building a Language is the slow part
    answers = scored = surrogates = 0
    for batch in range(40):
        if nlp.has_pipe("universal_ner"):
            nlp.remove_pipe("universal_ner")
        nlp.add_pipe(
            "universal_ner",
            config={
                "labels": ["person", "location", "thing"][: rng.randint(1, 3)],
                "model": {"@uniner_backends": "test.Fuzz.v1", "seed": SEED + batch},
                "overwrite_ents": False,
                "overlap_policy": rng.choice(["longest", "label_order"]),
                "alignment_mode": rng.choice(["strict", "contract", "expand"]),
                "word_boundaries": rng.random() < 0.5,
                "lenient_parsing": rng.random() < 0.8,
                "annotate": rng.choice(["ents", "spans", "both"]),
                "batch_size": rng.randint(1, 16),
            },
        )
        docs = [random_doc(nlp, rng) for _ in range(50)]
        before = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs]
        for doc, kept in zip(nlp.pipe(docs), before):  # nlp.pipe fills the Docs in place
            after = {(e.start, e.end, e.label_) for e in doc.ents}
            assert set(kept) <= after, (doc.text, kept, after)
            for span in doc.spans.get("uniner", []):
                assert 0 <= span.start < span.end <= len(doc)
                assert span._.uniner_score is None or 0.0 <= span._.uniner_score <= 1.0
                scored += span._.uniner_score is not None
            answers += len(doc._.uniner_responses or [])
            # a lone surrogate fed in is kept as U+FFFD; the JSON escape "\\ud800" is kept as written
            surrogates += any(
                "\ufffd" in r["response"] or "\\ud800" in r["response"] for r in doc._.uniner_responses or []
            )
        DocBin(store_user_data=True, docs=docs).to_bytes()  # savable whatever the answers held (lone surrogates too)
    assert answers > 3000 and scored > 100 and surrogates > 50


def test_the_parsers_never_raise_on_random_text():
    rng = random.Random(SEED)
    for _ in range(3000):
        text = "".join(rng.choice(FRAGMENTS + WORDS) for _ in range(rng.randint(0, 60)))
        parsed = parse_answer(text, lenient=rng.random() < 0.8)
        assert all(isinstance(m, str) and m.strip() for m in parsed.mentions)
        assert isinstance(official_items(text), list)
        assert all(isinstance(m, str) and isinstance(t, str) for m, t in parse_tuples(text).pairs)
    for text in ADVERSARIAL:
        parse_answer(text), official_items(text), parse_tuples(text)


def _garbage_line(rng: random.Random, valid: bytes) -> bytes:
    kind = rng.randrange(7)
    if kind == 0:  # a torn copy of a valid line, possibly inside a multi-byte character
        return valid[: rng.randrange(1, len(valid))]
    if kind == 1:  # random bytes, not UTF-8
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))).replace(b"\n", b"")
    if kind == 2:  # fields of the wrong type
        return json.dumps({"model": rng.choice([["m"], {"a": 1}, 3, None]), "prompt": "p", "response": "[]"}).encode()
    if kind == 3:
        return json.dumps({"model": "fuzz", "prompt": {"x": 1}, "response": "[]"}).encode()
    if kind == 4:  # deep nesting
        return b"[" * rng.randint(500, 5000) + b"]" * rng.randint(0, 10)
    if kind == 5:
        return json.dumps(rng.choice([[], "text", 42, None, {"model": "fuzz"}])).encode()
    return b"\r" + b" " * rng.randint(0, 3)


@pytest.mark.filterwarnings("ignore:Skipped")  # expected here; the count is tested in test_cache.py
def test_cache_files_with_garbage_lose_no_valid_entry_and_replay_without_the_model(tmp_path):
    rng = random.Random(SEED)
    template = UniNERTemplate()
    nlp = spacy.blank("en")
    for case in range(300):
        path = tmp_path / f"cache-{case}.jsonl"
        texts = [f"Case {case} text {i}: Alice met Bob in Köln." for i in range(rng.randint(1, 6))]
        entries = {
            template.prompt(text, "person"): json.dumps([rng.choice(["Alice", "Bob", "Köln"])]) for text in texts
        }
        lines = []
        for prompt, response in entries.items():
            valid = json.dumps({"model": "fuzz", "prompt": prompt, "response": response}, ensure_ascii=False).encode()
            lines += [_garbage_line(rng, valid) for _ in range(rng.randint(0, 2))] + [valid]
        if rng.random() < 0.5:
            lines.append(_garbage_line(rng, lines[-1]))  # a torn last line, as a kill leaves it
        path.write_bytes(b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b""))

        cache = ResponseCache(path)
        assert all(cache.get("fuzz", prompt) == response for prompt, response in entries.items())
        if case % 10 == 0:  # through the component: every prompt cached, so the model is never asked
            if nlp.has_pipe("universal_ner"):
                nlp.remove_pipe("universal_ner")
            nlp.add_pipe(
                "universal_ner",
                config={
                    "labels": ["person"],
                    "cache": str(path),
                    "model": {"@uniner_backends": "test.Fuzz.v1", "forbidden": True},
                },
            )
            assert all(doc._.uniner_responses for doc in nlp.pipe(texts))
        cache.add("fuzz", [("new prompt", '["new"]')])
        reread = ResponseCache(path)
        assert reread.get("fuzz", "new prompt") == '["new"]'
        assert all(reread.get("fuzz", prompt) == response for prompt, response in entries.items())


HOSTILE = [
    -1,
    0,
    2,
    10**9,
    -(10**9),
    0.5,
    -0.5,
    float("nan"),
    True,
    None,
    "",
    "x",
    "gpu",
    "cuda",
    "${x}",
    [],
    {},
    "not a url",
    "http://user:KEY@host/v1",
    "http://",
    1e-9,
]
#: Usable values per setting, drawn as often as hostile ones, so that many random configs build and run.
COMPONENT_SETTINGS = {
    "max_new_tokens": [1, 16, 256],
    "batch_size": [1, 8],
    "max_chunk_tokens": [8, 64, 256],
    "chunk_overlap": [0, 4, 32],
    "annotate": ["ents", "spans", "both"],
    "spans_key": ["uniner", "x"],
    "overlap_policy": ["longest", "label_order"],
    "overwrite_ents": [True, False],
    "alignment_mode": ["strict", "contract", "expand"],
    "word_boundaries": [True, False],
    "lenient_parsing": [True, False],
    "threshold": [None, 0.0, 0.5],
    "labels": ["person", "a,b", ["person", "place"], {"PER": "person"}, "東京", "</s>", "$ {USD}", "price in $"],
}
HTTP_SETTINGS = {
    "base_url": ["http://127.0.0.1:9/v1", ["http://127.0.0.1:9/v1", "https://example.org/v1"]],
    "timeout": [0.5, 60],
    "max_retries": [0, 6],
    "backoff_base": [0, 1.0],
    "max_concurrency": [1, 16],
    "model": ["m"],
    "api_key_env": [None, "UNINER_API_KEY"],
}
HF_SETTINGS = {
    "device": ["auto", "cpu"],
    "dtype": ["auto", "float32"],
    "queries_per_batch": [1, 64],
    "engine": ["shared_prefix", "generate"],
    "constrained": [False],
}
HOSTILE_LABELS = ["a, ,b", "", " ", "${USD}", "x" * 400, "per\nson", {"A": "x", "B": "x"}, ["p", "p"], ["p", 3], [], {}]


def _random_settings(rng: random.Random, settings, hostile=HOSTILE):
    chosen = rng.sample(sorted(settings), rng.randint(1, 3))
    return {name: rng.choice(settings[name] if rng.random() < 0.5 else hostile) for name in chosen}


def test_random_configs_build_or_fail_with_a_value_error_and_then_run():
    rng = random.Random(SEED)
    nlp = spacy.blank("en")
    built = refused = 0
    for _ in range(1000):
        config = {"labels": ["person"], "model": {"@uniner_backends": "test.Fuzz.v1"}}
        config.update(_random_settings(rng, COMPONENT_SETTINGS, HOSTILE + HOSTILE_LABELS))
        kind = rng.random()
        if kind < 0.3:
            config["model"] = {
                "@uniner_backends": "spacy_universalner.OpenAICompatible.v1",
                "model": "m",
                "base_url": "http://127.0.0.1:9/v1",
                **_random_settings(rng, HTTP_SETTINGS),
            }
        elif kind < 0.5:
            config["model"] = {
                "@uniner_backends": "spacy_universalner.HuggingFace.v1",
                "name": "x",
                **_random_settings(rng, HF_SETTINGS),
            }
        if nlp.has_pipe("universal_ner"):
            nlp.remove_pipe("universal_ner")
        try:
            nlp.add_pipe("universal_ner", config=config)
        except ValueError as err:  # spaCy's config errors are ValueErrors too
            if "base_url must be" in str(err):
                assert "KEY@" not in str(err)  # no credential quoted back from a URL
            refused += 1
            continue
        built += 1
        if config["model"]["@uniner_backends"] == "test.Fuzz.v1":
            nlp("Alice met Bob in Köln.")  # a built component runs
    assert built > 200 and refused > 200
