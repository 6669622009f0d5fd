"""Long Docs are split into passages of at most ``max_tokens`` model tokens."""

import spacy

from spacy_universalner.chunking import split_doc


def words(texts):
    """A stand-in tokenizer: one model token per whitespace word."""
    return [len(t.split()) for t in texts]


def refuse(texts):
    raise AssertionError("the tokenizer must not be needed for a short Doc")


def test_a_short_doc_is_one_chunk_without_a_tokenizer():
    doc = spacy.blank("en")("Bill Gates founded Microsoft.")
    chunks = split_doc(doc, 256, refuse)
    assert [c.text for c in chunks] == ["Bill Gates founded Microsoft."]
    assert (chunks[0].start, chunks[0].end) == (0, len(doc))


def test_empty_and_whitespace_docs_have_no_chunks():
    nlp = spacy.blank("en")
    assert split_doc(nlp(""), 256, refuse) == []
    assert split_doc(nlp("  \n "), 256, refuse) == []


def test_sentences_are_packed_whole():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    doc = nlp(" ".join(f"Sentence number {i} is here." for i in range(40)))
    chunks = split_doc(doc, 20, words)
    assert len(chunks) > 1
    assert all(words([c.text])[0] <= 20 for c in chunks)
    assert all(c.text.endswith(".") and c.text.startswith("Sentence") for c in chunks)
    assert " ".join(c.text for c in chunks) == doc.text  # nothing lost, nothing repeated


def test_without_sentences_token_windows_overlap():
    doc = spacy.blank("en")(" ".join(f"w{i}" for i in range(100)))
    chunks = split_doc(doc, 30, words, overlap=5)
    assert all(c.end - c.start <= 30 for c in chunks)
    assert chunks[0].start == 0 and chunks[-1].end == len(doc)
    for previous, following in zip(chunks, chunks[1:]):
        assert previous.end - following.start == 5


def test_a_50000_word_doc_is_split_quickly():
    doc = spacy.blank("en")(" ".join(["word"] * 50_000))
    chunks = split_doc(doc, 256, words, overlap=32)
    covered = set()
    for chunk in chunks:
        assert words([chunk.text])[0] <= 256
        covered.update(range(chunk.start, chunk.end))
    assert covered == set(range(len(doc)))
