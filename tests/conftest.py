"""Shared fixtures. Tests run offline: the hub is never contacted, models are built locally."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    """A random-weight, LLaMA-shaped causal LM with a locally trained tokenizer (built once per session)."""
    from spacy_universalner.testing import build_tiny_llama

    return str(build_tiny_llama(tmp_path_factory.mktemp("tiny-llama")))
