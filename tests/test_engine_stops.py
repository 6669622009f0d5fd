"""When the engine stops a sequence, and what constrained answers can contain.

A scripted stand-in model makes the generated text exact: at each step it puts all probability
on the next token of a script, so stopping rules are checked on answers we choose.
"""

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from spacy_universalner.backends.constrained import ConstraintFactory, passage_of  # noqa: E402
from spacy_universalner.backends.engine import SharedPrefixEngine, list_closed  # noqa: E402
from spacy_universalner.parsing import parse_answer  # noqa: E402
from spacy_universalner.prompt import UniNERTemplate  # noqa: E402

TEMPLATE = UniNERTemplate()
PASSAGE = "Bill Gates founded Microsoft in Albuquerque, New Mexico."


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path):
    return transformers.AutoTokenizer.from_pretrained(tiny_model_path)


class ScriptedLM(torch.nn.Module):
    """Answers ``script`` (token ids) to every prompt of ``prompt_len`` tokens, whatever it is asked."""

    def __init__(self, script, prompt_len, vocab_size):
        super().__init__()
        self.script, self.prompt_len = list(script), prompt_len
        self.config = transformers.LlamaConfig(
            vocab_size=vocab_size, hidden_size=8, num_hidden_layers=1, num_attention_heads=1
        )

    @property
    def device(self):
        return torch.device("cpu")

    def forward(self, input_ids, attention_mask, position_ids, cache=None, use_cache=True, logits_to_keep=1):
        step = (position_ids[:, -1] + 1 - self.prompt_len).tolist()
        logits = torch.zeros((input_ids.shape[0], 1, self.config.vocab_size))
        for row, k in enumerate(step):
            logits[row, 0, self.script[min(k, len(self.script) - 1)]] = 10.0
        return SimpleNamespace(logits=logits)


def _run(tokenizer, answer, stop_at_list_end=True, constrained=False, max_new_tokens=64):
    query = TEMPLATE.query(PASSAGE, "person")
    prompt_len = len(tokenizer(query.prompt)["input_ids"])
    script = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    model = ScriptedLM(script, prompt_len, len(tokenizer))
    factory = ConstraintFactory(tokenizer, len(tokenizer)) if constrained else None
    engine = SharedPrefixEngine(model, tokenizer, stop_at_list_end=stop_at_list_end, constraint=factory)
    return engine.decode([query], max_new_tokens)[0]


@pytest.mark.parametrize(
    "answer",
    [' ["Bill Gates"] and then some chatter', " [] USER: more", ' ["a", "b"]]] trailing'],
)
def test_stops_right_after_the_closed_list_with_the_same_parse(tokenizer, answer):
    early = _run(tokenizer, answer)
    full = _run(tokenizer, answer, stop_at_list_end=False)
    assert full.text == answer and full.stop_reason == "eos"
    assert early.stop_reason == "list_end"
    assert full.text.startswith(early.text) and early.text.rstrip().endswith("]")
    assert len(early.token_ids) < len(full.token_ids)
    assert parse_answer(early.text) == parse_answer(full.text)


@pytest.mark.parametrize(
    "answer",
    [
        'Sure: ["Bill Gates"] and ["Microsoft"]',  # text before the list: the lenient parser reads it all
        ' ["a]b", "c"]',  # the first "]" is inside a string: the official slice is not JSON
        ' ["Bill Gates",\n "Microsoft"]',  # the official rule does not cross newlines
    ],
)
def test_keeps_decoding_while_the_official_parse_is_not_settled(tokenizer, answer):
    decoded = _run(tokenizer, answer)
    assert decoded.stop_reason == "eos" and decoded.text == answer


def test_list_closed_follows_the_official_rule():
    assert list_closed(' ["x"]') and list_closed("[]") and list_closed('["x", "y"] tail')
    assert not list_closed(' ["x"') and not list_closed('Sure ["x"]') and not list_closed('["a]')


def test_max_new_tokens_stops_too(tokenizer):
    decoded = _run(tokenizer, ' ["Bill Gates", "Microsoft"]', max_new_tokens=3)
    assert decoded.stop_reason == "length" and len(decoded.token_ids) == 3


def test_constraint_keeps_passage_strings_and_removes_others(tokenizer):
    # The script wants a string that is not in the passage; the constraint steers it into one that is.
    decoded = _run(tokenizer, ' ["Steve Jobs", "Bill Gates"]', constrained=True)
    parsed = parse_answer(decoded.text)
    assert parsed.method == "official"
    assert parsed.mentions and all(m in PASSAGE for m in parsed.mentions)
    assert "Steve Jobs" not in decoded.text


def test_constraint_lets_a_valid_answer_through_unchanged(tokenizer):
    answer = ' ["Bill Gates", "New Mexico"]'
    assert _run(tokenizer, answer, constrained=True).text == answer
    assert _run(tokenizer, " []", constrained=True).text == " []"


def test_constraint_allows_only_word_aligned_passage_substrings(tokenizer):
    factory = ConstraintFactory(tokenizer, len(tokenizer))
    constraint = factory(TEMPLATE.query(PASSAGE, "person"))

    def accepts(text):
        state = constraint.start()
        for ch in text:
            state = constraint.step(state, ch)
            if state is None:
                return False
        return state == ("done",)

    assert accepts("[]") and accepts(' ["Bill Gates"]') and accepts('["Microsoft", "Albuquerque, New Mexico"]')
    assert not accepts('["Bill Gat"]')  # ends inside a word
    assert not accepts('["ill Gates"]')  # starts inside a word
    assert not accepts('["Steve"]') and not accepts('[""]') and not accepts("['Bill']")
    assert not accepts('["Bill Gates"') and not accepts('"Bill Gates"]')


def test_passage_of_reads_the_chunk_back_from_the_prompt():
    assert passage_of(TEMPLATE.query(PASSAGE, "person")) == PASSAGE
