"""English counts agree with their nouns (`consentry.words`)."""

from consentry.words import agree, count, plural


def test_a_count_takes_the_form_of_its_noun_and_verb() -> None:
    assert agree("{n} {row has|rows have} no value", 1) == "1 row has no value"
    assert agree("{n} {row has|rows have} no value", 0) == "0 rows have no value"
    assert agree("{n} {value begins|values begin}; so {it|they} fail", 12345) == "12,345 values begin; so they fail"
    assert count(1, "person", "people") == "1 person" and count(2, "person", "people") == "2 people"
    assert plural(None, "one", "many") == "many"
