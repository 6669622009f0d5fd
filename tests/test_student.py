"""Supervised data (``gold``), merged ``build`` sources and the warm-started student (``init-student``)."""

import json
import string
from pathlib import Path

import pytest

from spacy_universalner.conversations import read_conversation
from spacy_universalner.distill.build import build_conversations
from spacy_universalner.distill.gold import gold_conversations

CONLL = """-DOCSTART- O

Ada B-PER
Lovelace I-PER
visited O
London B-LOC
. O

The O
Royal B-MISC
Society O
met O
. O
"""

SETS = """
[paths]
data = "{data}"

[benchmarks]

[benchmarks.toy]
title = "toy"

[benchmarks.toy.reader]
@uniner_readers = "spacy_universalner.conll.v1"
path = "${{paths.data}}/toy/train.txt"

[benchmarks.toy.types]
PER = "person"
LOC = "location"
ORG = "organization"
MISC = null
"""


@pytest.fixture
def sets_config(tmp_path):
    (tmp_path / "data" / "toy").mkdir(parents=True)
    (tmp_path / "data" / "toy" / "train.txt").write_text(CONLL)
    path = tmp_path / "sets.cfg"
    path.write_text(SETS.format(data=tmp_path / "data"))
    return path


def answers(record):
    return dict(read_conversation(record)[1])


def test_gold_asks_every_type_of_a_set_with_natural_names(sets_config):
    records = gold_conversations(sets_config)["toy"]
    assert [read_conversation(r)[0] for r in records] == ["Ada Lovelace visited London .", "The Royal Society met ."]
    assert answers(records[0]) == {"person": '["Ada Lovelace"]', "location": '["London"]', "organization": "[]"}
    # MISC is dropped (null), not asked as a type.
    assert answers(records[1]) == {"person": "[]", "location": "[]", "organization": "[]"}


def test_gold_limit_is_a_seeded_sample(sets_config):
    one = gold_conversations(sets_config, limit=1, seed=3)["toy"]
    assert len(one) == 1 and one == gold_conversations(sets_config, limit=1, seed=3)["toy"]


def test_build_merges_sources_and_keeps_a_repeated_passage_once(tmp_path, sets_config):
    gold = tmp_path / "gold.json"
    gold.write_text(json.dumps(gold_conversations(sets_config)["toy"]))
    slimer = tmp_path / "slimer.jsonl"
    rows = [
        {
            "doc_question_pairID": "7:0",
            "tagName": "programming language",
            "input": "Guido wrote Python.",
            "output": '["Python"]',
        },
        {
            "doc_question_pairID": "8:0",
            "tagName": "person",
            "input": "Ada Lovelace visited London .",
            "output": '["Ada Lovelace"]',
        },
    ]
    slimer.write_text("\n".join(json.dumps(r) for r in rows))
    records, stats = build_conversations([gold, slimer], negatives=1, seed=0)
    texts = [read_conversation(r)[0] for r in records]
    assert sorted(texts) == ["Ada Lovelace visited London .", "Guido wrote Python.", "The Royal Society met ."]
    assert stats.duplicate_passages == 1
    python = answers(records[texts.index("Guido wrote Python.")])
    assert python["programming language"] == '["Python"]' and len(python) == 2  # + one sampled negative


# ---------------------------------------------------------------------------- init-student
WORDS = "ada lovelace visited london guido wrote python what describes person in the text i ' ve read this".split()


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    """A random BERT encoder with a WordPiece vocabulary written here (stands in for MiniLM)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("encoder")
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars] + WORDS
    wordpiece = Tokenizer(models.WordPiece({t: i for i, t in enumerate(dict.fromkeys(vocab))}, unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=wordpiece,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    assert tokenizer("lovelace", add_special_tokens=False)["input_ids"] == [tokenizer.convert_tokens_to_ids("lovelace")]
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def student(tmp_path_factory, tiny_encoder):
    from spacy_universalner.distill.student import init_student

    root = tmp_path_factory.mktemp("student")
    data = root / "train.json"
    turns = [
        {"from": "human", "value": "Text: Ada Lovelace visited London."},
        {"from": "gpt", "value": "I've read this text."},
        {"from": "human", "value": "What describes person in the text?"},
        {"from": "gpt", "value": '["Ada Lovelace"]'},
    ]
    data.write_text(json.dumps([{"conversations": turns}] * 3))
    summary = init_student(data, root / "init", encoder=str(tiny_encoder), layers=2, vocab_size=300)
    return root / "init", summary


def test_student_is_a_causal_lm_with_the_encoders_first_layers(student, tiny_encoder):
    import torch
    from transformers import AutoModel, AutoModelForCausalLM

    path, summary = student
    model = AutoModelForCausalLM.from_pretrained(path)
    encoder = AutoModel.from_pretrained(tiny_encoder)
    assert model.config.is_decoder and model.config.num_hidden_layers == 2 == summary["layers"]
    assert summary["parameters"] == sum(p.numel() for p in model.parameters())
    for name, weight in model.bert.encoder.layer[1].state_dict().items():
        assert torch.equal(weight, encoder.encoder.layer[1].state_dict()[name]), name
    # Output layer tied to the (transplanted) input embeddings.
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def test_new_tokens_start_from_the_mean_of_the_encoders_pieces(student, tiny_encoder):
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    path, _ = student
    tokenizer, encoder_tokenizer = AutoTokenizer.from_pretrained(path), AutoTokenizer.from_pretrained(tiny_encoder)
    embeddings = AutoModelForCausalLM.from_pretrained(path).get_input_embeddings().weight
    source = AutoModel.from_pretrained(tiny_encoder).embeddings.word_embeddings.weight
    token = next(t for t in tokenizer.get_vocab() if t.startswith("Ġ") and len(t) > 3)  # a whole word, e.g. "ĠLondon"
    pieces = encoder_tokenizer(tokenizer.convert_tokens_to_string([token]).strip(), add_special_tokens=False)[
        "input_ids"
    ]
    assert torch.allclose(embeddings[tokenizer.convert_tokens_to_ids(token)], source[pieces].mean(dim=0))
    eos = source[encoder_tokenizer.convert_tokens_to_ids("[SEP]")]
    assert torch.equal(embeddings[tokenizer.eos_token_id], eos)


def test_student_tokenizer_round_trips_text_and_speaks_uniners_template(student):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(student[0])
    text = 'USER: Text: Zoë met 3 CEOs in São Paulo — "Ünïcode" too.</s>'
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and tokenizer.decode(ids[1:]) == text
    assert tokenizer.eos_token == "</s>" and tokenizer.convert_tokens_to_ids("</s>") == tokenizer.eos_token_id


def test_student_trains_and_the_engine_matches_generate(tmp_path, student):
    from spacy_universalner.backends.hf import HuggingFaceBackend
    from spacy_universalner.distill.train import load_train_config, run_train
    from spacy_universalner.prompt import UniNERTemplate

    path, _ = student
    data = tmp_path / "train.json"
    data.write_text(
        json.dumps(
            [
                {
                    "conversations": [
                        {"from": "human", "value": "Text: Guido wrote Python."},
                        {"from": "gpt", "value": "I've read this text."},
                        {"from": "human", "value": "What describes person in the text?"},
                        {"from": "gpt", "value": '["Guido"]'},
                    ]
                }
            ]
            * 4
        )
    )
    config = load_train_config(
        Path(__file__).parents[1] / "configs" / "train-mini.cfg",
        {"training.max_steps": 2, "training.save_strategy": "no", "training.progress": False, "model.dropout": 0.0},
    )
    assert run_train(data, tmp_path / "trained", config, base_model=str(path))["steps"] == 2
    saved = json.loads((tmp_path / "trained" / "config.json").read_text())
    assert saved["hidden_dropout_prob"] == saved["attention_probs_dropout_prob"] == 0.0  # model.dropout = 0

    template = UniNERTemplate()
    queries = [
        template.query(text, label)
        for text in ("Guido wrote Python.", "Ada Lovelace visited London.")
        for label in ("person", "location", "programming language")
    ]
    answers = {}
    for engine in ("generate", "shared_prefix"):
        backend = HuggingFaceBackend(str(tmp_path / "trained"), device="cpu", engine=engine, stop_at_list_end=False)
        answers[engine] = [g.text for g in backend(queries, max_new_tokens=6)]
    assert answers["generate"] == answers["shared_prefix"]


def test_dropout_setting_names_every_rate_of_the_architecture_and_rejects_nonsense(student):
    from transformers import AutoConfig

    from spacy_universalner.distill.train import dropout_overrides

    config = AutoConfig.from_pretrained(student[0])
    assert dropout_overrides(config, None) == {}  # keep the model's own
    assert dropout_overrides(config, 0) == {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    with pytest.raises(ValueError, match="model.dropout"):
        dropout_overrides(config, 1.5)


def test_answers_are_capped_to_the_models_positions_and_long_prompts_are_refused(student):
    from spacy_universalner.backends.hf import HuggingFaceBackend
    from spacy_universalner.prompt import UniNERTemplate
    from spacy_universalner.types import BackendError

    backend = HuggingFaceBackend(str(student[0]), device="cpu", stop_at_list_end=False)
    assert backend.max_positions == 256
    query = UniNERTemplate().query("Ada visited London.", "person")
    prompt_tokens = len(backend.tokenizer(query.prompt)["input_ids"])
    assert backend._fit_context([query], 500) == 256 - prompt_tokens
    [generation] = backend([query], max_new_tokens=500)  # no crash past position 256
    assert len(backend.tokenizer(generation.text, add_special_tokens=False)["input_ids"]) <= 256 - prompt_tokens
    with pytest.raises(BackendError, match="max_chunk_tokens"):
        backend([UniNERTemplate().query("London " * 200, "person")])


def test_export_copies_inference_files_only_and_keeps_the_model_card(tmp_path, student):
    from spacy_universalner.distill.student import EXPORT_FILES, export_student

    dest = tmp_path / "packaged"
    dest.mkdir()
    (dest / "README.md").write_text("model card")
    with pytest.raises(FileNotFoundError, match="not a trained student"):
        export_student(tmp_path, dest)
    export_student(student[0], dest)
    assert sorted(p.name for p in dest.iterdir()) == sorted([*EXPORT_FILES, "README.md"])
    assert (dest / "README.md").read_text() == "model card"
