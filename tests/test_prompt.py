"""The prompt is UniNER's, byte for byte: the model was trained on exactly this string."""

from spacy_universalner.prompt import UniNERTemplate
from spacy_universalner.types import Query

OFFICIAL = (
    "A virtual assistant answers questions from a user based on the provided text. "
    "USER: Text: Bill Gates founded Microsoft in Albuquerque. "
    "ASSISTANT: I've read this text.</s>"
    "USER: What describes person in the text? ASSISTANT:"
)


def test_default_prompt_is_the_official_one_line_template():
    prompt = UniNERTemplate().prompt("Bill Gates founded Microsoft in Albuquerque.", "person")
    assert prompt == OFFICIAL
    assert "\n" not in prompt and "\u2019" not in prompt  # one line, ASCII apostrophe
    assert prompt.endswith("ASSISTANT:")  # nothing after the last colon


def test_entity_type_is_inserted_verbatim():
    prompt = UniNERTemplate().prompt("x", "Restaurant Name")
    assert "What describes Restaurant Name in the text?" in prompt


def test_query_splits_passage_prefix_from_label_suffix():
    template = UniNERTemplate()
    person, org = template.query("Some text.", "person"), template.query("Some text.", "organization")
    assert isinstance(person, Query)
    assert person.prefix == org.prefix and person.prefix.endswith("</s>")
    assert person.suffix == "USER: What describes person in the text? ASSISTANT:"
    assert person.prompt == template.prompt("Some text.", "person")


def test_separator_is_configurable_for_other_tokenizers():
    prompt = UniNERTemplate(separator="<|endoftext|>").prompt("t", "person")
    assert "I've read this text.<|endoftext|>USER:" in prompt


def test_training_conversation_contains_each_inference_prompt():
    template = UniNERTemplate()
    pieces = template.training_segments(
        "Bill Gates founded Microsoft.", [("person", '["Bill Gates"]'), ("location", "[]")]
    )
    conversation = "".join(piece for piece, _ in pieces)
    assert conversation.startswith(template.prompt("Bill Gates founded Microsoft.", "person"))
    targets = [piece for piece, is_target in pieces if is_target]
    assert targets == [" I've read this text.</s>", ' ["Bill Gates"]</s>', " []</s>"]


def test_questions_are_read_back_by_the_same_module():
    from spacy_universalner.prompt import parse_question

    assert parse_question(UniNERTemplate.question("Restaurant Name")) == "Restaurant Name"
    assert parse_question(" What describes program language in the text? ") == "program language"
    assert parse_question("Which persons are there?") is None
