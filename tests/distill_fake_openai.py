"""A fake OpenAI-compatible chat server on 127.0.0.1 that misbehaves on purpose.

Tests start it in a thread (port 0); ``python tests/distill_fake_openai.py --port 8011 --fail-rate 0.3``
runs it standalone to try ``annotate`` by hand. Each request takes the next action from
``script`` (then ``default``): ``ok``, ``429``, ``500``, ``timeout`` (answers late),
``malformed`` (a body that is not JSON), ``nonlist`` (teacher text that is not a list), ``401``, ``400``,
``401echo`` (a 401 whose body quotes the request's headers, key included), ``parts`` (the answer as a
list of content parts), ``number`` (a number as the message content), ``trickle`` (a whole answer
sent one byte every ``late / 10`` seconds), ``badgzip`` (a body marked gzip that is not), ``huge`` (an answer
of ``huge`` characters, as a server that ignores ``max_tokens`` sends) and ``gzipbomb`` (``huge`` bytes
gzipped into a few kilobytes, sent without a length).
With ``fail_rate``, ``ok`` requests fail at random with 429/500/timeout/malformed instead.
The answer names every capitalised word of the passage as a ``name``.
"""
import argparse
import gzip
import json
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional


class FakeTeacherServer:
    def __init__(self, script: Optional[List[str]] = None, default: str = "ok", fail_rate: float = 0.0,
                 delay: float = 0.0, late: float = 1.0, seed: int = 0, port: int = 0, huge: int = 1 << 20):
        self.script = list(script or [])
        self.default = default
        self.fail_rate = fail_rate
        self.delay = delay
        self.late = late
        self.huge = huge
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.log: List[dict] = []  # one entry per request: action, passage
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                user = body["messages"][-1]["content"] if "messages" in body else body.get("prompt", "")
                passage = user.split("Passage: ", 1)[-1]
                action = server.next_action()
                with server.lock:
                    server.log.append({"action": action, "passage": passage, "body": body,
                                       "auth": self.headers.get("Authorization")})
                if server.delay:
                    time.sleep(server.delay)
                if action == "timeout":
                    time.sleep(server.late)
                    action = "ok"
                if action == "401echo":
                    payload = json.dumps({"error": "unauthorized", "headers": dict(self.headers)}).encode()
                    self.send_response(401)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if action in ("400", "429", "500", "401"):
                    self.send_response(int(action))
                    if action == "429":
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "scripted failure"}}')
                    return
                if action in ("badgzip", "gzipbomb"):
                    body = b"this is not gzip" if action == "badgzip" else gzip.compress(b" " * server.huge)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    try:
                        self.wfile.write(body)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    self.close_connection = True
                    return
                if action == "malformed":
                    payload = b'{"choices": [{"message": {"content": "[(\\"Bi'
                else:
                    content = "I could not find any entities, sorry." if action == "nonlist" else answer(passage)
                    if action == "huge":
                        content = '[("' + "A" * server.huge + '", "name")]'
                    if action == "parts":
                        content = [{"type": "text", "text": content[:5]}, {"type": "text", "text": content[5:]}]
                    elif action == "number":
                        content = 42
                    if "messages" in body:
                        choice = {"message": {"role": "assistant", "content": content}}
                    else:  # the text completions endpoint
                        choice = {"text": content}
                    payload = json.dumps({
                        "id": "fake", "model": body.get("model"),
                        "choices": [{"index": 0, "finish_reason": "stop", **choice}],
                    }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    if action == "trickle":
                        for byte in payload:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(server.late / 10)
                    else:
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): fine

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def next_action(self) -> str:
        with self.lock:
            if self.script:
                return self.script.pop(0)
            if self.default == "ok" and self.fail_rate and self.random.random() < self.fail_rate:
                return self.random.choice(["429", "500", "timeout", "malformed"])
            return self.default

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def passages_answered(self) -> List[str]:
        return [entry["passage"] for entry in self.log if entry["action"] in ("ok", "nonlist", "timeout")]

    def __enter__(self) -> "FakeTeacherServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def answer(passage: str) -> str:
    names = list(dict.fromkeys(re.findall(r"\b[A-Z][a-z]+\b", passage)))
    return "[" + ", ".join(f'("{name}", "name")' for name in names) + "]"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--fail-rate", type=float, default=0.3)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--late", type=float, default=3.0)
    options = parser.parse_args()
    with FakeTeacherServer(
        fail_rate=options.fail_rate, delay=options.delay, late=options.late, port=options.port
    ) as fake:
        print(f"serving on {fake.url}", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        print(json.dumps({"requests": len(fake.log), "answered": len(fake.passages_answered()),
                          "distinct_answered": len(set(fake.passages_answered()))}))
