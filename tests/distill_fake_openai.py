"""Try ``annotate`` by hand against a flaky OpenAI-compatible server: ``python tests/distill_fake_openai.py
--port 8011 --fail-rate 0.3`` runs :class:`~spacy_universalner.testing.FakeOpenAIServer` (the server the tests
use) until Ctrl-C, then prints how many requests it got."""

import argparse
import json
import time

from spacy_universalner.testing import FakeOpenAIServer

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--fail-rate", type=float, default=0.3)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--late", type=float, default=3.0)
    options = parser.parse_args()
    settings = {"fail_rate": options.fail_rate, "delay": options.delay, "late": options.late, "port": options.port}
    with FakeOpenAIServer(**settings) as fake:
        print(f"serving on {fake.url}", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        answered = [r["prompt"] for r in fake.requests if r["action"] in ("ok", "nonlist", "timeout")]
        print(
            json.dumps(
                {"requests": len(fake.requests), "answered": len(answered), "distinct_answered": len(set(answered))}
            )
        )
