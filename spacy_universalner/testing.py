"""Tiny LLaMA-shaped models built locally, for tests, benchmarks and smoke runs.

Nothing is downloaded: the tokenizer is a byte-level BPE trained in a second on built-in text
(any Unicode input stays encodable), the weights are random (seeded). Special tokens follow
LLaMA: ``<unk>`` 0 (also padding, as in UniNER), ``<s>`` 1, ``</s>`` 2, so the default
template's ``</s>`` separator is the tokenizer's EOS text.
"""

import gzip
import json
import random
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .types import Generation, Query

try:
    from .registry import uniner_backends
except ImportError:  # no spaCy (the GPU check machine): the tiny-model builders need none
    uniner_backends = None

_CORPUS = [
    "A virtual assistant answers questions from a user based on the provided text.",
    "USER: Text: Bill Gates founded Microsoft in Albuquerque. ASSISTANT: I've read this text.",
    'USER: What describes person in the text? ASSISTANT: ["Bill Gates"]',
    'What describes organization in the text? ["Microsoft"] What describes location in the text? []',
    "Guido van Rossum created Python while at CWI in Amsterdam, the Netherlands.",
    "Barack Obama visited Paris in 2015 and met the president of France at the Elysee Palace.",
    "The company announced on Monday that its quarterly revenue rose by 12 percent to 3.4 billion dollars.",
    "Researchers at the University of Cambridge published a paper on protein folding in Nature.",
    "The film was directed by Steven Spielberg and stars Tom Hanks as a lawyer in New York.",
    "Aspirin reduces the risk of heart attack; ibuprofen treats inflammation and fever.",
    "She played the guitar and the piano in a jazz band that toured Europe and Japan.",
    "Given a passage, your task is to extract all entities and identify their entity types.",
    "programming language, algorithm, conference, researcher, country, event, award, song, album",
]


def build_tokenizer(vocab_size: int = 512, extra_text: Optional[Iterable[str]] = None):
    """A ``PreTrainedTokenizerFast`` with LLaMA's special tokens, trained on built-in text."""
    from .pretrained import train_tokenizer

    return train_tokenizer(list(_CORPUS) + list(extra_text or []), vocab_size)


def build_tiny_llama(
    path: Union[str, Path],
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: Optional[int] = None,
    intermediate_size: Optional[int] = None,
    vocab_size: int = 512,
    seed: int = 0,
) -> Path:
    """Write a random-weight LLaMA-shaped causal LM and its tokenizer to ``path``; return the path.

    Defaults give a ~0.1M-parameter model that generates in milliseconds on a CPU;
    ``hidden_size=512, num_layers=8`` gives ~25M parameters for benchmarks.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tokenizer = build_tokenizer(vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads or num_heads,
        max_position_embeddings=2048,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = 0
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


#: SmolLM2's special tokens, at SmolLM2's ids: unknown 0, BOS 1, EOS (end of a chat turn) 2.
CHATML_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_chatml_tokenizer(vocab_size: int = 512):
    """A GPT-2-style byte-level BPE like SmolLM2's: no BOS added, EOS and padding ``<|im_end|>``, a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(CHATML_SPECIAL),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS, trainer=trainer)
    unk, bos, eos = CHATML_SPECIAL
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=bos,
        eos_token=eos,
        unk_token=unk,
        pad_token=eos,
        chat_template=CHATML_TEMPLATE,
        clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"],
    )


def build_tiny_smollm2(
    path: Union[str, Path],
    *,
    hidden_size: int = 48,
    num_layers: int = 2,
    vocab_size: int = 512,
    initializer_range: float = 0.2,
    seed: int = 0,
) -> Path:
    """Write a random-weight LLaMA shaped like SmolLM2-135M-Instruct to ``path``; return the path.

    Same shape, scaled down: grouped-query attention with three query heads per key/value head
    (SmolLM2: 9 and 3), heads of ``hidden_size // 6``, tied input and output embeddings, RoPE base
    100000, and a :func:`build_chatml_tokenizer` tokenizer (EOS ``<|im_end|>`` = 2 = padding, no BOS).
    Weights are drawn ten times wider than LLaMA's 0.02: with tied embeddings and 0.02, the input
    token dominates the output and a random model repeats one token forever, which tests nothing.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tokenizer = build_chatml_tokenizer(vocab_size)
    # transformers 4 takes rope_theta, 5 reads it into rope_parameters (and its stubs lack the old name)
    rope: Dict[str, Any] = {"rope_theta": 100000.0}
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 8 // 3,
        num_hidden_layers=num_layers,
        num_attention_heads=6,
        num_key_value_heads=2,
        head_dim=hidden_size // 6,
        max_position_embeddings=8192,
        **rope,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        initializer_range=initializer_range,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _llama_cpp_permute(weights, n_head: int):
    """llama.cpp's reordering of q/k projection rows for its RoPE layout (transformers undoes it on load)."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def write_llama_gguf(model_path: Union[str, Path], gguf_path: Union[str, Path], name: str = "tiny-smollm2") -> Path:
    """Write a LLaMA folder with a byte-level BPE tokenizer (:func:`build_tiny_smollm2`) as a float32 GGUF file.

    The keys are those llama.cpp's converter writes for SmolLM2 (``llama.*``, ``tokenizer.ggml.*`` with
    model "gpt2" and merges, the chat template, ``add_bos_token`` and ``add_space_prefix`` false as in
    SmolLM2's file: transformers' reader strips a leading space when decoding otherwise), so tests can run
    :func:`~spacy_universalner.distill.gguf.convert_gguf` without the 98 MB package. Needs ``gguf``.
    """
    import gguf
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer

    model_path, gguf_path = Path(model_path), Path(gguf_path)
    config = AutoConfig.from_pretrained(model_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    state = load_file(str(model_path / "model.safetensors"))
    bpe = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    tokens = [""] * len(tokenizer)
    for text, index in tokenizer.get_vocab().items():
        tokens[index] = text
    special = set(tokenizer.all_special_ids)
    merges = [m if isinstance(m, str) else " ".join(m) for m in bpe["merges"]]
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads

    writer = gguf.GGUFWriter(str(gguf_path), "llama")
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(float(getattr(config, "rope_theta", None) or config.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_dimension_count(head_dim)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types(
        [gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL for i in range(len(tokens))]
    )
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_unk_token_id(tokenizer.unk_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_add_bos_token(False)
    writer.add_add_space_prefix(False)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    for key, tensor in state.items():
        if key == "lm_head.weight" and config.tie_word_embeddings:
            continue
        data = tensor.to(torch.float32).numpy()
        if key.endswith("self_attn.q_proj.weight"):
            data = _llama_cpp_permute(data, config.num_attention_heads)
        elif key.endswith("self_attn.k_proj.weight"):
            data = _llama_cpp_permute(data, config.num_key_value_heads)
        target = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise ValueError(f"No GGUF name for tensor {key}")
        writer.add_tensor(target, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return gguf_path


def build_tiny_gliner(path: Union[str, Path], *, hidden_size: int = 32, num_layers: int = 2, seed: int = 0) -> Path:
    """Write a random-weight GLiNER span model (a tiny BERT encoder with a WordPiece vocabulary made from
    the built-in text) to ``path`` with ``save_pretrained``; return the path. Needs the ``gliner`` package."""
    import torch
    from gliner import GLiNER, GLiNERConfig
    from transformers import (  # type: ignore[attr-defined]  # transformers 5: BertTokenizerFast, an undeclared alias
        BertConfig,
        BertModel,
        BertTokenizerFast,
    )

    path = Path(path)
    encoder = path.parent / f"{path.name}-encoder"
    encoder.mkdir(parents=True, exist_ok=True)
    words = sorted({w for line in _CORPUS for w in re.findall(r"\w+|[^\w\s]", line.lower())})
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (encoder / "vocab.txt").write_text("\n".join(specials + words) + "\n", encoding="utf8")
    tokenizer = BertTokenizerFast(vocab_file=str(encoder / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(encoder)
    torch.manual_seed(seed)
    BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=2,
            intermediate_size=hidden_size * 2,
            max_position_embeddings=512,
        )
    ).save_pretrained(encoder)
    torch.manual_seed(seed)
    model = GLiNER.from_config(GLiNERConfig(model_name=str(encoder), hidden_size=hidden_size, max_width=4, dropout=0.0))
    model.save_pretrained(str(path))
    return path


class KeywordBackend:
    """A fake backend for tests and benchmarks: it answers each UniNER question with the given ``words`` of the
    asked type that occur in the passage (a JSON list, as UniNER writes it), in microseconds, with no model.

    ``raw[type]``: the answer to every question about that type instead, whatever the passage: a text (garbage,
    say) or a :class:`~spacy_universalner.types.Generation` (with token log-probabilities).
    ``reply``: a function of the prompt giving every answer instead (random answers, say).
    ``delay``: seconds each call takes, as a model's would (to kill a run in the middle, say).
    ``forbidden``: any answer is an error (for runs that a cache must answer whole).
    Each call's prompts are recorded in ``calls``.
    """

    def __init__(
        self,
        words: Optional[Mapping[str, Sequence[str]]] = None,
        name: str = "keywords",
        delay: float = 0.0,
        raw: Optional[Mapping[str, Union[str, Generation]]] = None,
        reply: Optional[Callable[[str], Union[str, Generation]]] = None,
        forbidden: bool = False,
    ):
        self.words = {label: list(found) for label, found in (words or {}).items()}
        self.raw = dict(raw or {})
        self.reply = reply
        self.name = name
        self.delay = delay
        self.forbidden = forbidden
        self.calls: List[List[str]] = []

    def __call__(self, queries: Sequence[Query], max_new_tokens: int = 256) -> List[Generation]:
        if self.delay:
            time.sleep(self.delay)
        self.calls.append([query.prompt for query in queries])
        return [self.answer(query.prompt) for query in queries]

    def answer(self, prompt: str) -> Generation:
        """The answer to one prompt."""
        if self.forbidden:
            raise AssertionError("the model was asked although the cache holds every prompt")
        if self.reply is not None:
            answer = self.reply(prompt)
        else:
            from .prompt import read_query

            read = read_query(prompt)
            if read is None:
                raise ValueError(f"Not a UniNER prompt: {prompt[-200:]!r}")
            passage, label = read
            found = [word for word in self.words.get(label, []) if word in passage]
            answer = self.raw[label] if label in self.raw else json.dumps(found)
        return answer if isinstance(answer, Generation) else Generation(answer)


def make_keyword_backend(
    words: Optional[Dict[str, List[str]]] = None,
    name: str = "keywords",
    delay: float = 0.0,
    raw: Optional[Dict[str, str]] = None,
) -> KeywordBackend:
    return KeywordBackend(words, name, delay, raw)


if uniner_backends is not None:
    uniner_backends("spacy_universalner.testing.Keywords.v1")(make_keyword_backend)


class KeywordLLMModel:
    """:class:`KeywordBackend`'s answers as a spacy-llm model (prompts per Doc in, one answer per prompt out),
    with spacy-llm's ``context_length`` (None: no sharding). Each call's prompts per Doc are recorded in
    ``calls``. Register it in spacy-llm's ``llm_models`` registry to name it in a config."""

    def __init__(
        self,
        words: Optional[Mapping[str, Sequence[str]]] = None,
        raw: Optional[Mapping[str, str]] = None,
        context_length: Optional[int] = None,
        forbidden: bool = False,
    ):
        self.keywords = KeywordBackend(words, raw=raw, forbidden=forbidden)
        self.context_length = context_length
        self.calls: List[List[List[str]]] = []

    def __call__(self, prompts: Iterable[Iterable[str]]) -> Iterable[Iterable[str]]:  # spacy-llm checks the types
        listed = [list(doc_prompts) for doc_prompts in prompts]
        self.calls.append(listed)
        return [[self.keywords.answer(prompt).text for prompt in doc_prompts] for doc_prompts in listed]


def keyword_pipeline(words: Dict[str, Sequence[str]], batch_size: int = 8, delay: float = 0.0):
    """A blank English pipeline whose ``universal_ner`` answers with :class:`KeywordBackend` (a function, so it
    can be handed to worker processes and Ray actors, e.g. as ``functools.partial(keyword_pipeline, words)``)."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe(
        "universal_ner",
        config={
            "labels": list(words),
            "batch_size": batch_size,
            "model": {
                "@uniner_backends": "spacy_universalner.testing.Keywords.v1",
                "words": {k: list(v) for k, v in words.items()},
                "delay": delay,
            },
        },
    )
    return nlp


def capitalised_names(prompt: str) -> str:
    """A distillation teacher's answer (a list of ``("mention", "type")`` tuples): each capitalised word of the
    passage (the text after ``Passage: ``, the paper's prompt) as a ``name``."""
    passage = prompt.split("Passage: ", 1)[-1]
    names = list(dict.fromkeys(re.findall(r"\b[A-Z][a-z]+\b", passage)))
    return "[" + ", ".join(f'("{name}", "name")' for name in names) + "]"


class FakeOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1 that misbehaves on purpose, for tests (``with`` starts it in a
    thread, on ``port`` or a free one, and stops it). Both endpoints, ``/completions`` and ``/chat/completions``,
    answer ``answer(prompt)``, a chat's prompt being its last message (default: :func:`capitalised_names`).

    Each request gets an action: the next of ``script`` (whatever it asks); else, for a prompt holding a key of
    ``by_prompt``, the action of its attempt (first, second, ...); else ``default``:
    ``ok``; an HTTP status (``429`` says ``Retry-After: retry_after``); ``timeout`` (answers ``late`` seconds
    late); ``malformed`` (a body that is not JSON); ``garbled`` (JSON with no choices); ``nonlist`` (text that
    is not a list); ``401echo`` (a 401 whose body quotes the request's headers, key included); ``parts`` (the
    answer as a list of content parts); ``number`` (a number as the message content); ``trickle`` (the answer
    sent one byte every ``late / 10`` seconds); ``badgzip`` (a body marked gzip that is not); ``huge`` (an answer
    of ``huge`` characters, as a server that ignores ``max_tokens`` sends) and ``gzipbomb`` (``huge`` bytes
    gzipped into a few kilobytes, sent without a length). With ``fail_rate``, ``ok`` requests fail at random
    with 429/500/timeout/malformed instead (seeded by ``seed``).

    ``api_key``: requests without it get a 401. ``delay``: seconds before each reply, or a function of the prompt
    giving them. ``logprob``: every token's log-probability, where a completion request asks for them.
    Each request is kept in ``requests``: its ``path``, ``body``, ``auth`` header, ``prompt``, ``action`` and
    ``time``; ``max_in_flight`` is the most requests it was answering at once.
    """

    def __init__(
        self,
        answer: Callable[[str], str] = capitalised_names,
        *,
        script: Optional[Sequence[str]] = None,
        by_prompt: Optional[Mapping[str, Sequence[str]]] = None,
        default: str = "ok",
        fail_rate: float = 0.0,
        seed: int = 0,
        api_key: Optional[str] = None,
        delay: Union[float, Callable[[str], float]] = 0.0,
        late: float = 1.0,
        retry_after: float = 0,
        logprob: Any = -0.25,
        huge: int = 1 << 20,
        port: int = 0,
    ):
        from http.server import ThreadingHTTPServer

        self.answer = answer
        self.script = list(script or [])
        self.by_prompt = {key: list(actions) for key, actions in (by_prompt or {}).items()}
        self.default = default
        self.fail_rate = fail_rate
        self.random = random.Random(seed)
        self.api_key = api_key
        self.delay = delay
        self.late = late
        self.retry_after = retry_after
        self.logprob = logprob
        self.huge = huge
        self.requests: List[Dict[str, Any]] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def attempts(self, substring: str) -> List[Dict[str, Any]]:
        """The requests whose prompt holds ``substring``."""
        return [request for request in self.requests if substring in request["prompt"]]

    def __enter__(self) -> "FakeOpenAIServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def take(self, path: str, body: Dict[str, Any], auth: Optional[str]) -> Dict[str, Any]:
        """Record one request and choose its action."""
        prompt = body["messages"][-1]["content"] if "messages" in body else body.get("prompt", "")
        with self.lock:
            attempt = sum(request["prompt"] == prompt for request in self.requests)
            wrong_key = self.api_key and auth != f"Bearer {self.api_key}"
            action = "401" if wrong_key else self._action(prompt, attempt)
            request = {
                "path": path,
                "body": body,
                "auth": auth,
                "prompt": prompt,
                "action": action,
                "time": time.monotonic(),
            }
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return request

    def _action(self, prompt: str, attempt: int) -> str:
        if self.script:
            return self.script.pop(0)
        for key, actions in self.by_prompt.items():
            if key in prompt and attempt < len(actions):
                return actions[attempt]
        if self.default == "ok" and self.fail_rate and self.random.random() < self.fail_rate:
            return self.random.choice(["429", "500", "timeout", "malformed"])
        return self.default

    def reply(self, request: Dict[str, Any]) -> Tuple[int, Dict[str, str], bytes]:
        """``(status, headers, body)`` for a request whose action is an answer or a failing status."""
        action, body = request["action"], request["body"]
        if action.isdigit():
            headers = {"Retry-After": str(self.retry_after)} if action == "429" else {}
            return int(action), headers, b'{"error": {"message": "scripted failure"}}'
        if action == "malformed":
            return 200, {}, b'{"choices": [{"message": {"content": "[(\\"Bi'
        if action == "garbled":
            return 200, {}, b'{"unexpected": true}'
        content: Any = self.answer(request["prompt"])
        if action == "nonlist":
            content = "I could not find any entities, sorry."
        elif action == "huge":
            content = '[("' + "A" * self.huge + '", "name")]'
        elif action == "parts":
            content = [{"type": "text", "text": content[:5]}, {"type": "text", "text": content[5:]}]
        elif action == "number":
            content = 42
        choice: Dict[str, Any] = {"index": 0, "finish_reason": "stop"}
        if "messages" in body:
            choice["message"] = {"role": "assistant", "content": content}
        else:
            choice["text"] = content
            if body.get("logprobs"):
                tokens = re.findall(r'\[|"|[^"\[\]]+|\]', content)
                choice["logprobs"] = {"tokens": tokens, "token_logprobs": [self.logprob] * len(tokens)}
        kind = "chat.completion" if "messages" in body else "text_completion"
        payload = {"id": "fake", "object": kind, "model": body.get("model"), "choices": [choice]}
        return 200, {}, json.dumps(payload).encode()


def _handler(server: FakeOpenAIServer):
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            request = server.take(self.path, body, self.headers.get("Authorization"))
            action = request["action"]
            delay = server.delay(request["prompt"]) if callable(server.delay) else server.delay
            time.sleep(delay + (server.late if action == "timeout" else 0.0))
            with server.lock:  # before replying: the client may send its next request at once
                server.in_flight -= 1
            try:
                if action == "401echo":
                    self._send(401, {}, json.dumps({"error": "unauthorized", "headers": dict(self.headers)}).encode())
                elif action in ("badgzip", "gzipbomb"):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    self.wfile.write(b"this is not gzip" if action == "badgzip" else gzip.compress(b" " * server.huge))
                elif action == "trickle":
                    self._send(*server.reply(request), pause=server.late / 10)
                else:
                    self._send(*server.reply(request))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout): fine

        def _send(self, status: int, headers: Dict[str, str], payload: bytes, pause: float = 0.0) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if not pause:
                self.wfile.write(payload)
                return
            for byte in payload:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(pause)

    return Handler
