"""Placing answer strings on tokens: every occurrence, snapped to tokens, with careful fallbacks."""

import pytest
import spacy

from spacy_universalner.alignment import AlignmentConfig, find_mention


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def texts(doc, offsets):
    return [doc[s:e].text for s, e in offsets]


def test_every_occurrence_is_found(nlp):
    doc = nlp("Paris is big. I love Paris.")
    assert texts(doc, find_mention(doc, "Paris")) == ["Paris", "Paris"]


def test_search_is_limited_to_the_chunk(nlp):
    doc = nlp("Paris is big. I love Paris.")
    assert find_mention(doc, "Paris", start_char=5) == [(6, 7)]


def test_case_insensitive_fallback_only_when_exact_search_fails(nlp):
    doc = nlp("APPLE sells apples. Apple is a company.")
    assert texts(doc, find_mention(doc, "Apple")) == ["Apple"]
    assert texts(doc, find_mention(doc, "apple inc")) == []
    assert texts(doc, find_mention(doc, "aPPLE")) == ["APPLE", "Apple"]


def test_whitespace_insensitive_fallback(nlp):
    doc = nlp("He moved to New  York City.")
    assert texts(doc, find_mention(doc, "New York City")) == ["New  York City"]


def test_punctuation_inside_tokens_is_snapped_by_the_mode(nlp):
    doc = nlp("She works at AT&T in Dallas.")
    assert texts(doc, find_mention(doc, "AT&T")) == ["AT&T"]
    doc = nlp("She works at AT&T.")  # spaCy keeps "AT&T." as one token: expand takes the token
    assert texts(doc, find_mention(doc, "AT&T")) == ["AT&T."]
    assert find_mention(doc, "AT&T", config=AlignmentConfig(mode="contract")) == []
    doc = nlp("Send it to example.com/path now")
    # "example.com" is inside one token: expand grows it, strict and contract drop it.
    assert texts(doc, find_mention(doc, "example.com", config=AlignmentConfig(mode="expand"))) == ["example.com/path"]
    assert find_mention(doc, "example.com", config=AlignmentConfig(mode="strict")) == []


def test_a_mention_inside_a_longer_word_is_not_an_entity(nlp):
    doc = nlp("He studied at Fordham.")
    assert find_mention(doc, "Ford") == []
    assert texts(doc, find_mention(doc, "Ford", config=AlignmentConfig(word_boundaries=False))) == ["Fordham"]


def test_overlapping_mentions_are_all_placed(nlp):
    doc = nlp("The University of Cambridge is in Cambridge.")
    assert texts(doc, find_mention(doc, "University of Cambridge")) == ["University of Cambridge"]
    assert texts(doc, find_mention(doc, "Cambridge")) == ["Cambridge", "Cambridge"]


def test_unalignable_and_empty_strings_give_nothing(nlp):
    doc = nlp("Bill Gates founded Microsoft.")
    assert find_mention(doc, "Steve Jobs") == []
    assert find_mention(doc, "   ") == []


def test_non_latin_scripts_and_emoji(nlp):
    doc = nlp("Владимир живёт в Москве 😀 и 東京")
    assert texts(doc, find_mention(doc, "Москве")) == ["Москве"]
    assert texts(doc, find_mention(doc, "東京")) == ["東京"]


def test_scripts_without_spaces_align_on_token_boundaries():
    nlp = spacy.blank("zh")  # character segmentation: every character is a token
    doc = nlp("习近平访问了北京大学。")
    assert texts(doc, find_mention(doc, "习近平")) == ["习近平"]
    assert texts(doc, find_mention(doc, "北京大学")) == ["北京大学"]


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="alignment_mode"):
        AlignmentConfig(mode="fuzzy")
