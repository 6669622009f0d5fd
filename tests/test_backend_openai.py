"""The OpenAI-compatible completions backend, against a local server started by each test.

The server (127.0.0.1 only) plays a UniNER model behind vLLM / TGI / llama.cpp: it answers each
prompt with a JSON list chosen from the entity type asked, and can be told to fail some attempts
with 429 (Retry-After), 500, a reply slower than the client's timeout, 401, a garbled body or a body
marked gzip that is not.
"""

import json
from contextlib import ExitStack
from typing import List

import pytest
import spacy

from spacy_universalner.backends.openai import OpenAICompatibleBackend
from spacy_universalner.prompt import UniNERTemplate
from spacy_universalner.testing import FakeOpenAIServer, KeywordBackend
from spacy_universalner.types import BackendError

TEMPLATE = UniNERTemplate()
ANSWERS = {"person": '["Bill Gates"]', "organization": '["Microsoft"]', "location": "[]"}
UNINER = KeywordBackend(raw=ANSWERS)  # the model behind the server: a JSON list chosen from the type asked


@pytest.fixture
def make_server():
    """Starts a :class:`~spacy_universalner.testing.FakeOpenAIServer` answering as ``UNINER``; stops it after the
    test."""
    with ExitStack() as servers:
        yield lambda **settings: servers.enter_context(
            FakeOpenAIServer(lambda prompt: UNINER.answer(prompt).text, **settings)
        )


def backend(url, **kwargs) -> OpenAICompatibleBackend:
    settings = {"api_key_env": None, "backoff_base": 0.01, "timeout": 5.0, **kwargs}
    return OpenAICompatibleBackend(url, "uniner-test", **settings)


def queries(text: str, labels: List[str]):
    return [TEMPLATE.query(text, label) for label in labels]


def test_sends_the_exact_prompt_greedily_to_the_completions_endpoint(make_server, monkeypatch):
    server = make_server(api_key="sk-local")
    monkeypatch.setenv("UNINER_TEST_KEY", "sk-local")
    query = TEMPLATE.query("Bill Gates founded Microsoft.", "person")

    [generation] = backend(server.url, api_key_env="UNINER_TEST_KEY")([query], max_new_tokens=17)

    assert generation.text == '["Bill Gates"]'
    [request] = server.requests
    assert request["path"] == "/v1/completions"
    assert request["auth"] == "Bearer sk-local"
    assert request["body"] == {
        "model": "uniner-test",
        "prompt": "A virtual assistant answers questions from a user based on the provided text. USER: Text: "
        "Bill Gates founded Microsoft. ASSISTANT: I've read this text.</s>"
        "USER: What describes person in the text? ASSISTANT:",
        "temperature": 0,
        "max_tokens": 17,
        "stop": ["</s>"],
    }


def test_answers_keep_query_order_with_bounded_concurrency(make_server):
    # Later prompts are answered faster, so responses arrive out of order.
    labels = [f"type {i}" for i in range(12)] + ["person", "organization"]
    server = make_server(
        delay=lambda prompt: 0.3 - 0.02 * next(i for i, lab in enumerate(labels) if f" {lab} in" in prompt)
    )

    generations = backend(server.url, max_concurrency=4)(queries("Bill Gates founded Microsoft.", labels))

    assert [g.text for g in generations] == ["[]"] * 12 + ['["Bill Gates"]', '["Microsoft"]']
    assert 1 < server.max_in_flight <= 4


def test_rate_limits_server_errors_and_timeouts_are_retried(make_server):
    server = make_server(
        by_prompt={"person": ["429", "ok"], "organization": ["500", "503", "ok"], "location": ["timeout", "ok"]},
        retry_after=1,
    )
    labels = ["person", "organization", "location"]

    generations = backend(server.url, timeout=0.5)(queries("Bill Gates founded Microsoft.", labels))

    assert [g.text for g in generations] == ['["Bill Gates"]', '["Microsoft"]', "[]"]
    assert [len(server.attempts(f" {label} in")) for label in labels] == [2, 3, 2]
    first, second = server.attempts(" person in")
    assert second["time"] - first["time"] >= 0.9  # the server's Retry-After: 1 was honoured


def test_gives_up_with_a_clear_error_when_failures_outlast_the_retries(make_server):
    server = make_server(by_prompt={"person": ["500"] * 10})

    with pytest.raises(BackendError, match=r"uniner-test.*failed 3 times.*HTTP 500"):
        backend(server.url, max_retries=2)(queries("Bill Gates.", ["person"]))
    assert len(server.requests) == 3


def test_an_unusable_response_is_retried_then_reported(make_server):
    server = make_server(by_prompt={"person": ["garbled"] * 10})

    with pytest.raises(BackendError, match="unreadable response body"):
        backend(server.url, max_retries=1)(queries("Bill Gates.", ["person"]))
    assert len(server.requests) == 2


def test_a_wrong_api_key_fails_at_once_naming_the_variable(make_server, monkeypatch):
    server = make_server(api_key="sk-right")
    monkeypatch.setenv("UNINER_TEST_KEY", "sk-wrong")

    with pytest.raises(BackendError, match=r"401.*check the API key in the environment variable UNINER_TEST_KEY"):
        backend(server.url, api_key_env="UNINER_TEST_KEY")(queries("Bill Gates.", ["person"]))
    assert len(server.requests) == 1  # authentication errors are not retried


def test_a_missing_api_key_says_which_variable_to_set(make_server, monkeypatch):
    server = make_server(api_key="sk-right")
    monkeypatch.delenv("UNINER_TEST_KEY", raising=False)

    with pytest.raises(BackendError, match="UNINER_TEST_KEY is not set"):
        backend(server.url, api_key_env="UNINER_TEST_KEY")(queries("Bill Gates.", ["person"]))


def test_token_logprobs_and_offsets_when_asked_for(make_server):
    server = make_server()

    [generation] = backend(server.url, logprobs=True)(queries("Bill Gates.", ["person"]))

    assert server.requests[0]["body"]["logprobs"] == 1
    assert generation.token_logprobs == [-0.25] * 5
    assert [generation.text[start:end] for start, end in generation.token_offsets] == ["[", '"', "Bill Gates", '"', "]"]


def test_several_base_urls_share_the_queries_round_robin(make_server):
    first, second = make_server(), make_server()
    labels = ["person", "organization", "location", "date"]

    generations = backend([first.url, second.url])(queries("Bill Gates founded Microsoft.", labels))

    assert [g.text for g in generations] == ['["Bill Gates"]', '["Microsoft"]', "[]", "[]"]
    assert len(first.requests) == len(second.requests) == 2


def test_nothing_is_sent_until_queries_arrive_and_chunking_needs_no_server(make_server):
    server = make_server()
    model = backend(server.url)

    assert model([]) == []
    assert model.count_tokens(["abcdef", "a"]) == [2, 1]  # a deliberate over-estimate without a tokenizer
    assert model.eos_text == "</s>" and model.name == "uniner-test"
    assert server.requests == []


def test_universal_ner_component_end_to_end_over_http(make_server):
    server = make_server(by_prompt={"organization": ["500", "ok"]})
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["person", "organization", "location"],
            "model": {
                "@uniner_backends": "spacy_universalner.OpenAICompatible.v1",
                "base_url": server.url,
                "model": "uniner-test",
                "api_key_env": None,
                "max_concurrency": 3,
                "backoff_base": 0.01,
            },
        },
    )

    doc = nlp("Bill Gates founded Microsoft in Albuquerque.")

    assert [(ent.text, ent.label_) for ent in doc.ents] == [("Bill Gates", "person"), ("Microsoft", "organization")]
    assert len(server.requests) == 4  # three labels, one retried
    assert {r["body"]["prompt"] for r in server.requests} == {
        TEMPLATE.prompt("Bill Gates founded Microsoft in Albuquerque.", label)
        for label in ["person", "organization", "location"]
    }


def test_settings_are_checked_when_the_backend_is_built():
    with pytest.raises(ValueError, match="base_url"):
        OpenAICompatibleBackend("", "uniner-test")
    with pytest.raises(ValueError, match="max_concurrency"):
        OpenAICompatibleBackend("http://127.0.0.1:1/v1", "uniner-test", max_concurrency=0)


def component(url, cache=None, **model):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": ["person", "organization", "location"],
            "batch_size": 64,
            "cache": cache,
            "model": {
                "@uniner_backends": "spacy_universalner.OpenAICompatible.v1",
                "base_url": url,
                "model": "uniner-test",
                "api_key_env": None,
                "max_retries": 1,
                "backoff_base": 0.01,
                "max_concurrency": 8,
                **model,
            },
        },
    )
    return nlp


def test_one_doc_that_always_fails_loses_no_other_answer(make_server, tmp_path):
    # 64 Docs x 3 labels, one Doc's prompts always 500: the server answered 189, and the cache used to keep 24.
    server = make_server(by_prompt={"Doc 13 ": ["500"] * 10})
    cache = tmp_path / "cache.jsonl"
    texts = [f"Doc {i} says Bill Gates founded Microsoft." for i in range(64)]

    with pytest.raises(
        BackendError, match=r"No answer for 1 of the 64 Docs of this batch \(positions 13; .*'Doc 13 says"
    ):
        list(component(server.url, str(cache)).pipe(texts))

    cached = {json.loads(line)["prompt"] for line in cache.read_text().splitlines()}
    assert len(cached) == 189 and not any("Doc 13 " in prompt for prompt in cached)
    asked = len(server.requests)
    server.by_prompt = {}
    docs = list(component(server.url, str(cache)).pipe(texts))  # the rerun asks only Doc 13's three queries
    assert len(server.requests) - asked == 3 and all(len(doc.ents) == 2 for doc in docs)


def test_a_dead_server_among_several_loses_none_of_the_live_ones_answers(make_server, tmp_path):
    live = make_server()
    cache = tmp_path / "cache.jsonl"
    texts = [f"Doc {i}: Bill Gates founded Microsoft." for i in range(4)]

    with pytest.raises(BackendError, match="connection error"):
        list(component([live.url, "http://127.0.0.1:9/v1"], str(cache)).pipe(texts))

    assert len(live.requests) == 6 and len(cache.read_text().splitlines()) == 6  # every live answer kept


def test_an_unwritable_cache_fails_before_the_first_request(make_server, tmp_path):
    # The answers of the first backend call used to be lost when the cache could not be written.
    server = make_server()
    (tmp_path / "a-file").write_text("not a folder")
    nlp = component(server.url, str(tmp_path / "a-file" / "cache.jsonl"))
    with pytest.raises(BackendError, match="cannot be written"):
        nlp("Bill Gates founded Microsoft.")
    assert server.requests == []


@pytest.mark.parametrize(
    "setting,value,message",
    [
        ("max_retries", -1, "max_retries must be an integer >= 0"),
        ("timeout", 0, "timeout must be a number of seconds greater than 0"),
        ("timeout", -1.0, "timeout must be"),
        ("backoff_base", -0.5, "backoff_base must be"),
        ("base_url", "not a url", "base_url must be an http"),
        ("base_url", ["http://127.0.0.1:8000/v1", "gpu2:8000"], "base_url must be an http"),
    ],
)
def test_bad_settings_are_refused_at_add_pipe(setting, value, message):
    with pytest.raises(ValueError, match=message):
        component("http://127.0.0.1:9/v1", **{setting: value})


# --- hostile input, round 2 (issue 27) ---------------------------------------------------------------


@pytest.mark.parametrize("logprob", [1000, float("nan"), float("inf"), 10**400, "high", None])
def test_a_server_log_probability_that_is_not_one_gives_no_score_never_a_crash(make_server, logprob):
    # A positive log-probability (1000) raised OverflowError in confidence.py; NaN gave scores outside [0, 1].
    server = make_server()
    server.logprob = logprob
    nlp = component(server.url, logprobs=True)
    doc = nlp("Bill Gates founded Microsoft.")
    assert [(e.text, e.label_) for e in doc.ents] == [("Bill Gates", "person"), ("Microsoft", "organization")]
    assert doc.spans["uniner"].attrs["scores"] == [None, None]


def test_log_probabilities_a_hair_above_zero_read_as_certainty(make_server):
    server = make_server()
    server.logprob = 1e-7  # a server's rounding
    doc = component(server.url, logprobs=True)("Bill Gates founded Microsoft.")
    assert doc.spans["uniner"].attrs["scores"] == [1.0, 1.0]


def test_a_body_that_does_not_decode_loses_none_of_the_answers_that_arrived(make_server, tmp_path):
    # A bad gzip body escaped as requests.ContentDecodingError; the 20 answers that had arrived were not cached.
    server = make_server(by_prompt={"Doc 3 ": ["badgzip"] * 10})
    cache = tmp_path / "cache.jsonl"
    texts = [f"Doc {i} says Bill Gates founded Microsoft." for i in range(7)]
    with pytest.raises(BackendError, match=r"connection error.*No answer for 1 of the 7 Docs"):
        list(component(server.url, str(cache)).pipe(texts))
    assert len(cache.read_text().splitlines()) == 18  # every answer but Doc 3's three


def test_base_url_credentials_are_refused_so_they_never_reach_a_saved_config(tmp_path):
    # nlp.to_disk wrote the password into config.cfg; the key belongs in an environment variable.
    for url in ("http://user:s3cret@127.0.0.1:8000/v1", "http://user:s3#cr/et@127.0.0.1:8000/v1"):
        with pytest.raises(ValueError, match="must not hold credentials.*api_key_env") as failure:
            component(url)
        assert "s3" not in str(failure.value)


def test_a_key_with_a_trailing_newline_works_and_a_broken_one_is_never_printed(make_server, monkeypatch):
    server = make_server(api_key="sk-live-0123456789abcdef")
    monkeypatch.setenv("UNINER_TEST_KEY", "sk-live-0123456789abcdef\n")
    doc = component(server.url, api_key_env="UNINER_TEST_KEY")("Bill Gates founded Microsoft.")
    assert len(doc.ents) == 2
    monkeypatch.setenv("UNINER_TEST_KEY", "sk-live-0123456789\tabcdef")
    with pytest.raises(ValueError, match="UNINER_TEST_KEY holds a space") as failure:
        component(server.url, api_key_env="UNINER_TEST_KEY")("Bill Gates founded Microsoft.")
    assert "0123456789" not in str(failure.value)
