"""The OpenAI-compatible client and HTTP teacher against a local server that fails on purpose."""

import base64
import json
import re
import time

import pytest

from spacy_universalner.distill.annotate import run_annotate
from spacy_universalner.distill.teachers import (
    DEFAULT_MAX_TOKENS,
    SYSTEM_MESSAGE,
    TYPE_INSTRUCTION,
    OpenAITeacher,
    build_teacher,
)
from spacy_universalner.http import (
    MAX_RESPONSE_BYTES,
    AuthenticationError,
    ClientError,
    HTTPClientError,
    OpenAIClient,
    ResponseTooLarge,
    RetriesExhausted,
    Unreachable,
)
from spacy_universalner.parsing import MAX_ANSWER_CHARS
from spacy_universalner.testing import FakeOpenAIServer


def client(url, **kwargs):
    sleeps = []
    options = dict(api_key_env=None, timeout=0.5, max_retries=5, concurrency=4, sleep=sleeps.append)
    options.update(kwargs)
    return OpenAIClient(url, "fake-teacher", **options), sleeps


def test_retries_429_500_timeout_and_malformed_json_then_answers():
    with FakeOpenAIServer(script=["429", "500", "timeout", "malformed"]) as server:
        http, sleeps = client(server.url)
        text = http.chat([{"role": "user", "content": "Passage: Ada met Alan."}])
    assert text == '[("Ada", "name"), ("Alan", "name")]'
    assert [entry["action"] for entry in server.requests] == ["429", "500", "timeout", "malformed", "ok"]
    assert len(sleeps) == 4
    assert sleeps[0] == 0  # Retry-After: 0 honoured on the 429


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    http = OpenAIClient("http://127.0.0.1:9/v1", "m", api_key_env=None, backoff_base=1.0, backoff_max=8.0)
    for attempt, ceiling in [(0, 1), (1, 2), (2, 4), (3, 8), (6, 8)]:
        delay = http.backoff(attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert http.backoff(0, retry_after=3.0) == 3.0


def test_gives_up_after_max_retries():
    with FakeOpenAIServer(default="500") as server:
        http, _ = client(server.url, max_retries=2)
        with pytest.raises(RetriesExhausted, match="HTTP 500"):
            http.chat([{"role": "user", "content": "Passage: x"}])
    assert len(server.requests) == 3


def test_a_server_that_is_not_there_fails_within_seconds_naming_the_url():
    # Issue 24: `annotate` against nothing listening retried for 8 min 49 s; a DNS failure 9 times per passage.
    for url, reason in [
        ("http://127.0.0.1:9/v1", "connection refused"),
        ("http://no-such-host.invalid/v1", "unknown host"),
    ]:
        http, sleeps = client(url, max_retries=8)
        with pytest.raises(Unreachable, match=rf"{re.escape(url)}/completions cannot be reached .*{reason}.*base_url"):
            http.complete("hello")
        assert sleeps == [0.5, 1.0]  # two quick retries (a server restarting), never the 8 backoffs


def test_rate_limits_and_server_errors_keep_their_backoff():
    with FakeOpenAIServer(script=["429", "500", "500"]) as server:
        http, sleeps = client(server.url, max_retries=8, backoff_base=4.0)
        http.chat([{"role": "user", "content": "Passage: Ada met Alan."}])
    assert sleeps[0] == 0 and 4.0 <= sleeps[1] <= 8.0 and 8.0 <= sleeps[2] <= 16.0


def test_authentication_error_names_the_environment_variable(monkeypatch):
    monkeypatch.delenv("UNINER_TEST_KEY", raising=False)
    with FakeOpenAIServer(default="401") as server:
        http, sleeps = client(server.url, api_key_env="UNINER_TEST_KEY")
        with pytest.raises(AuthenticationError, match="UNINER_TEST_KEY is not set"):
            http.chat([{"role": "user", "content": "Passage: x"}])
    assert sleeps == [] and len(server.requests) == 1  # no retry


def test_api_key_is_sent_from_the_named_variable(monkeypatch):
    monkeypatch.setenv("UNINER_TEST_KEY", "sk-test")
    http, _ = client("http://127.0.0.1:9/v1", api_key_env="UNINER_TEST_KEY")
    assert http._headers["Authorization"] == "Bearer sk-test"


def test_bad_request_is_not_retried():
    with FakeOpenAIServer(default="400") as server:
        http, sleeps = client(server.url)
        with pytest.raises(ClientError, match="400"):
            http.chat([{"role": "user", "content": "Passage: x"}])
    assert sleeps == [] and len(server.requests) == 1


def test_completions_endpoint_runs_concurrently_and_keeps_input_order():
    names = ["Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta", "Eta", "Theta"]
    with FakeOpenAIServer(delay=0.05) as server:
        http, _ = client(server.url)
        answers = http.complete_many([f"Passage: {name}" for name in names], max_tokens=5)
    assert answers == [f'[("{name}", "name")]' for name in names]
    assert all(entry["body"]["max_tokens"] == 5 and "prompt" in entry["body"] for entry in server.requests)


def test_http_teacher_sends_the_papers_messages_at_temperature_zero():
    with FakeOpenAIServer() as server:
        http, _ = client(server.url, params={"temperature": 0})
        OpenAITeacher(http)("Bill Gates founded Microsoft.")
    body = server.requests[0]["body"]
    assert body["temperature"] == 0
    assert body["messages"] == [
        {"role": "system", "content": SYSTEM_MESSAGE},
        {"role": "user", "content": TYPE_INSTRUCTION + "\n\nPassage: Bill Gates founded Microsoft."},
    ]


def test_annotate_over_http_survives_failures_and_records_non_list_answers(tmp_path):
    passages = tmp_path / "passages.jsonl"
    passages.write_text("".join(json.dumps({"id": f"p{i}", "text": f"Alice{i} met Bob."}) + "\n" for i in range(6)))
    output = tmp_path / "annotations.jsonl"
    script = ["429", "500", "timeout", "malformed", "nonlist"]
    with FakeOpenAIServer(script=script) as server:
        http, _ = client(server.url, concurrency=2)
        stats = run_annotate(passages, output, OpenAITeacher(http), progress=False)
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert stats.answered == 6 and stats.failed == 0
    assert sorted(r["id"] for r in records) == [f"p{i}" for i in range(6)]
    not_a_list = [r for r in records if r["parse"] == "failed"]
    assert len(not_a_list) == 1 and not_a_list[0]["entities"] == [] and stats.unparsed == 1
    assert all(r["entities"] == [["Bob", "name"]] for r in records if r["parse"] != "failed")


def test_annotate_stops_clearly_on_authentication_error(tmp_path):
    passages = tmp_path / "passages.jsonl"
    passages.write_text("".join(json.dumps({"id": f"p{i}", "text": "Some text."}) + "\n" for i in range(5)))
    with FakeOpenAIServer(default="401") as server:
        http, _ = client(server.url, concurrency=1)
        stats = run_annotate(passages, tmp_path / "out.jsonl", OpenAITeacher(http), progress=False)
    assert stats.stopped and "401" in stats.stopped
    assert len(server.requests) <= 2  # stops instead of hammering the server with a bad key
    assert (tmp_path / "out.jsonl").read_text() == ""


def test_a_whole_request_has_a_deadline_however_slowly_the_server_trickles():
    # One byte every 0.3 s (30 s for the whole answer) used to hold a request with timeout=1.0 as long as that.
    with FakeOpenAIServer(default="trickle", late=3.0) as server:
        http, _ = client(server.url, timeout=1.0, max_retries=0)
        started = time.monotonic()
        with pytest.raises(RetriesExhausted, match=r"no complete response within 1.0s"):
            http.chat([{"role": "user", "content": "Passage: Ada met Alan."}])
    assert time.monotonic() - started < 10  # about 1 s; generous for a busy machine


def test_content_given_as_parts_is_joined_and_other_content_is_a_failure(tmp_path):
    # A 200 whose message.content was a list or a number crashed annotate after 2 of 300 passages.
    passages = tmp_path / "passages.jsonl"
    passages.write_text("".join(json.dumps({"id": f"p{i}", "text": f"Alice{i} met Bob."}) + "\n" for i in range(6)))
    output = tmp_path / "annotations.jsonl"
    with FakeOpenAIServer(script=["parts", "number"]) as server:
        http, _ = client(server.url, concurrency=1)
        stats = run_annotate(passages, output, OpenAITeacher(http), progress=False)
        assert stats.answered == 5 and stats.failed == 1 and stats.stopped is None
        assert all(r["entities"] for r in map(json.loads, output.read_text().splitlines()))
        again = run_annotate(passages, output, OpenAITeacher(http), progress=False)  # the failed one, now answered
    assert again.answered == 1 and len(output.read_text().splitlines()) == 6


def test_the_teacher_caps_its_answers_by_default():
    with FakeOpenAIServer() as server:
        build_teacher(
            {
                "@uniner_teachers": "spacy_universalner.OpenAITeacher.v1",
                "base_url": server.url,
                "model": "fake-teacher",
                "api_key_env": None,
            }
        )("Ada met Alan.")
    assert server.requests[0]["body"]["max_tokens"] == DEFAULT_MAX_TOKENS == 1024


def test_credentials_in_the_url_are_used_but_never_stored_or_printed(tmp_path):
    passages = tmp_path / "passages.jsonl"
    passages.write_text(json.dumps({"id": "p0", "text": "Ada met Alan."}) + "\n")
    output = tmp_path / "annotations.jsonl"
    with FakeOpenAIServer() as server:
        url = server.url.replace("http://", "http://user:s3cret-KEY@")
        teacher = build_teacher(
            {
                "@uniner_teachers": "spacy_universalner.OpenAITeacher.v1",
                "base_url": url,
                "model": "fake-teacher",
                "api_key_env": None,
            }
        )
        run_annotate(passages, output, teacher, progress=False)
        with FakeOpenAIServer(default="500") as failing:
            http, _ = client(failing.url.replace("http://", "http://user:s3cret-KEY@"), max_retries=0)
            with pytest.raises(RetriesExhausted) as failure:
                http.chat([{"role": "user", "content": "Passage: x"}])
    assert server.requests[0]["body"]["model"] == "fake-teacher"  # the request went through
    [record] = map(json.loads, output.read_text().splitlines())
    assert record["teacher"] == f"fake-teacher@{server.url}"
    assert "s3cret" not in output.read_text() and "s3cret" not in str(failure.value)


def test_a_server_that_echoes_the_key_in_its_401_body_does_not_leak_it(monkeypatch):
    monkeypatch.setenv("UNINER_TEST_KEY", "sk-live-0123456789abcdef")
    with FakeOpenAIServer(default="401echo") as server:
        http, _ = client(server.url, api_key_env="UNINER_TEST_KEY")
        with pytest.raises(AuthenticationError) as failure:
            http.chat([{"role": "user", "content": "Passage: x"}])
    message = str(failure.value)
    assert "401" in message and "Server said" in message and "Bearer ***" in message
    assert "0123456789abcdef" not in message


@pytest.mark.parametrize(
    "setting,value,message",
    [
        ("max_retries", -1, "max_retries must be an integer >= 0"),
        ("timeout", 0, "timeout must be a number of seconds greater than 0"),
        ("timeout", -5.0, "timeout must be"),
        ("backoff_base", -1.0, "backoff_base must be"),
        ("base_url", "not a url", "base_url must be an http"),
        ("base_url", "http://user:KEY@", "base_url must be an http"),
    ],
)
def test_bad_client_settings_are_refused_when_the_client_is_built(setting, value, message):
    options = {"base_url": "http://127.0.0.1:9/v1", setting: value}
    with pytest.raises(ValueError, match=message) as failure:
        OpenAIClient(options.pop("base_url"), "m", api_key_env=None, **options)
    assert "KEY" not in str(failure.value)


def test_the_deadline_holds_through_an_http_proxy(monkeypatch):
    with FakeOpenAIServer(default="trickle", late=3.0) as proxy:  # answers every request it relays, slowly
        monkeypatch.setenv("HTTP_PROXY", proxy.url.rsplit("/", 1)[0])
        monkeypatch.setenv("NO_PROXY", "")
        http, _ = client("http://teacher.invalid/v1", timeout=1.0, max_retries=0)
        started = time.monotonic()
        with pytest.raises(RetriesExhausted, match=r"no complete response within 1.0s"):
            http.chat([{"role": "user", "content": "Passage: Ada met Alan."}])
    assert time.monotonic() - started < 10 and len(proxy.requests) == 1  # the request went through the proxy


# --- hostile input, round 2 (issue 27) ---------------------------------------------------------------


def test_a_key_with_a_trailing_newline_is_sent_stripped(monkeypatch):
    # `export OPENAI_API_KEY=$(cat key.txt)` keeps the newline; requests refused the header and printed the key.
    monkeypatch.setenv("UNINER_TEST_KEY", "sk-live-0123456789abcdef\n")
    with FakeOpenAIServer() as server:
        http, _ = client(server.url, api_key_env="UNINER_TEST_KEY")
        http.chat([{"role": "user", "content": "Passage: Ada met Alan."}])
    assert server.requests[0]["auth"] == "Bearer sk-live-0123456789abcdef"


def test_a_key_with_a_line_break_inside_is_refused_without_printing_it(monkeypatch):
    monkeypatch.setenv("UNINER_TEST_KEY", "sk-live-0123\n456789abcdef")
    with pytest.raises(ValueError, match="UNINER_TEST_KEY holds a space, a line break") as failure:
        client("http://127.0.0.1:9/v1", api_key_env="UNINER_TEST_KEY")
    assert "0123" not in str(failure.value)


def test_an_error_raised_by_requests_is_passed_on_with_the_key_masked(monkeypatch):
    import requests

    monkeypatch.setenv("UNINER_TEST_KEY", "sk-live-0123456789abcdef")
    http, _ = client("http://127.0.0.1:9/v1", api_key_env="UNINER_TEST_KEY")

    def refuse(*args, **kwargs):
        raise requests.exceptions.InvalidHeader(
            "Invalid leading whitespace in header value b'Bearer sk-live-0123456789abcdef'"
        )

    monkeypatch.setattr(http._session, "post", refuse)
    with pytest.raises(HTTPClientError, match=r"InvalidHeader.*Bearer \*\*\*") as failure:
        http.chat([{"role": "user", "content": "Passage: x"}])
    assert "0123456789abcdef" not in str(failure.value)


def test_annotate_masks_keys_in_the_failures_it_prints(tmp_path, caplog):
    class LeakyTeacher:
        name, concurrency = "leaky", 1

        def __call__(self, passage):
            raise RuntimeError("upstream said: Authorization: Bearer sk-live-0123456789abcdef")

    passages = tmp_path / "passages.jsonl"
    passages.write_text(json.dumps({"id": "p0", "text": "Ada met Alan."}) + "\n")
    stats = run_annotate(passages, tmp_path / "out.jsonl", LeakyTeacher(), progress=False)
    assert stats.failed == 1 and "Bearer ***" in caplog.text
    assert "0123456789abcdef" not in caplog.text


def test_a_body_that_does_not_decode_is_retried_and_the_other_answers_are_kept():
    # A bad gzip body escaped as requests.ContentDecodingError, and the 20 answers that had arrived were lost.
    with FakeOpenAIServer(script=["badgzip"]) as server:
        http, sleeps = client(server.url, concurrency=1)
        answers = http.complete_many([f"Passage: Name{i} here." for i in range(21)])
    assert len(answers) == 21 and all(answers) and len(sleeps) == 1
    with FakeOpenAIServer(default="badgzip") as server:
        http, _ = client(server.url, max_retries=1)
        with pytest.raises(RetriesExhausted, match="connection error"):
            http.chat([{"role": "user", "content": "Passage: x"}])


def test_a_response_larger_than_the_cap_is_not_read_and_not_retried():
    # A server ignoring max_tokens sent a 20 MiB answer: annotate peaked at 3.0 GB and wrote a 42 MB line.
    assert MAX_RESPONSE_BYTES == 4 << 20  # the documented default
    for action in ("huge", "gzipbomb"):  # with a Content-Length, and gzipped without one
        with FakeOpenAIServer(default=action, huge=2 << 20) as server:
            http, sleeps = client(server.url, max_response_bytes=256 << 10)
            with pytest.raises(ResponseTooLarge, match=r"larger than max_response_bytes \(262,144 bytes\).*max_tokens"):
                http.chat([{"role": "user", "content": "Passage: Ada."}])
        assert len(server.requests) == 1 and sleeps == []


def test_an_answer_far_past_the_token_cap_is_stored_cut_to_the_answer_cap(tmp_path):
    passages = tmp_path / "passages.jsonl"
    passages.write_text(json.dumps({"id": "p0", "text": "Ada met Alan."}) + "\n")
    with FakeOpenAIServer(default="huge", huge=200_000) as server:
        http, _ = client(server.url)
        stats = run_annotate(passages, tmp_path / "out.jsonl", OpenAITeacher(http), progress=False)
    [record] = map(json.loads, (tmp_path / "out.jsonl").read_text().splitlines())
    assert stats.answered == 1 and len(record["answer"]) == MAX_ANSWER_CHARS and record["answer_chars"] > 200_000


def test_url_credentials_never_appear_in_a_message_even_with_characters_urls_reserve():
    # A password holding "#" or "/" made urlsplit read part of it as the port: "bad port", whole URL printed.
    for password in ("pa#ss:w0rd", "pa/ss?w0rd", "pa#ss/w0rd"):
        http = OpenAIClient(f"http://user:{password}@127.0.0.1:9/v1", "m", api_key_env=None)
        assert http.base_url == "http://127.0.0.1:9/v1"  # the password is one password, not a path or port
        with pytest.raises(ValueError, match=r"'http://127.0.0.1:port/v1' has a bad port") as failure:
            OpenAIClient(f"http://user:{password}@127.0.0.1:port/v1", "m", api_key_env=None)
        assert "w0rd" not in str(failure.value)


def test_which_credential_wins_the_key_over_the_url(monkeypatch):
    monkeypatch.setenv("UNINER_TEST_KEY", "sk-live-0123456789abcdef")
    with FakeOpenAIServer() as server:
        url = server.url.replace("http://", "http://user:pa%23ss@")
        client(url, api_key_env="UNINER_TEST_KEY")[0].chat([{"role": "user", "content": "Passage: x"}])
        client(url, api_key_env=None)[0].chat([{"role": "user", "content": "Passage: x"}])
    with_key, url_only = (entry["auth"] for entry in server.requests)
    assert with_key == "Bearer sk-live-0123456789abcdef"  # one Authorization header: the key's
    assert url_only == "Basic " + base64.b64encode(b"user:pa#ss").decode()  # URL credentials alone: HTTP Basic
