"""Grammar phrases: normalization and mapping engine output back to the flow's phrase."""

from __future__ import annotations

from asr.grammar import Grammar, normalize
from asr.recognizer import Word


def words(*spec: tuple[str, float]) -> list[Word]:
    return [Word(text, i * 0.5, i * 0.5 + 0.4, conf) for i, (text, conf) in enumerate(spec)]


def test_normalize_keeps_words_of_every_script() -> None:
    assert normalize("  Technical   Support! ") == "technical support"
    assert normalize("I'd like to pay, please.") == "i'd like to pay please"
    assert normalize("'quoted'") == "quoted"
    assert normalize("e-mail") == "e mail"
    assert normalize("요금 문의") == "요금 문의"
    assert normalize("账单") == "账单"
    assert normalize("ＢＩＬＬＩＮＧ") == "billing"  # full-width letters (NFKC)
    assert normalize("?!") == ""


def test_phrases_keep_the_flows_spelling_first_one_wins() -> None:
    grammar = Grammar(["Billing", "billing!", "Technical support", "  "])
    assert grammar.phrases == {"billing": "Billing", "technical support": "Technical support"}
    assert grammar.words() == {"billing", "technical", "support"}
    assert grammar.restrict(["technical support"]).phrases == {"technical support": "Technical support"}
    assert not Grammar([])


def test_match_prefers_longest_phrase_then_confidence() -> None:
    grammar = Grammar(["support", "technical support", "no"])
    match = grammar.match(words(("technical", 0.9), ("support", 0.8)))
    assert match is not None and match.phrase == "technical support" and match.confidence == 0.8
    # a loop grammar's "no [unk] support": the most confident phrase wins, [unk] is skipped
    match = grammar.match(words(("no", 0.4), ("[unk]", 1.0), ("support", 0.95)))
    assert match is not None and match.phrase == "support" and [w.text for w in match.words] == ["support"]
    assert grammar.match(words(("[unk]", 1.0))) is None
    assert grammar.match([]) is None


def test_match_ties_go_to_the_longer_stretch_of_speech() -> None:
    grammar = Grammar(["yes", "no"])
    heard = [Word("yes", 0.0, 0.1, 1.0), Word("no", 0.2, 0.8, 1.0)]
    match = grammar.match(heard)
    assert match is not None and match.phrase == "no"
