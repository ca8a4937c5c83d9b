"""The knowledge bot: file format, retrieval, abstention, handoff, follow-ups, clarification, repair.

Runs the real engine on the shipped Northwind knowledge base (the same one the evaluation uses).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.context import ContextStore
from bot.engine import KnowledgeBot
from bot.handoff import is_handoff_request
from bot.interface import BotRequest
from bot.knowledge import KnowledgeEntry, KnowledgeFileError, dump, parse, validate
from bot.text import detect_language

KB = Path(__file__).resolve().parents[2] / "bot" / "examples" / "northwind_kb.yaml"


@pytest.fixture(scope="module")
def entries() -> list[KnowledgeEntry]:
    return parse(KB.read_text(encoding="utf-8"), str(KB))


@pytest.fixture(scope="module")
def bot(entries: list[KnowledgeEntry]) -> KnowledgeBot:
    return KnowledgeBot(entries)


def ask(bot: KnowledgeBot, text: str, language: str = "en", conversation: str | None = None):  # type: ignore[no-untyped-def]
    return bot.answer(BotRequest(text, language, conversation, "chat"))


# ---- the file format ---------------------------------------------------------------------------------------


def test_shipped_knowledge_base_is_large_enough(entries: list[KnowledgeEntry]) -> None:
    assert sum(e.language == "en" for e in entries) >= 50
    assert sum(e.language == "zh" for e in entries) >= 25
    assert len({e.id for e in entries}) == len(entries)


def test_dump_then_parse_is_the_same(entries: list[KnowledgeEntry]) -> None:
    assert parse(dump(entries), "round-trip") == entries


def test_the_documented_example_parses() -> None:
    text = """\
entries:
  - id: opening-hours
    language: en
    questions: ["What are your opening hours?", "When is customer service open?"]
    answer: Our hotline is open Monday to Friday from 8 am to 8 pm.
    tags: [hotline]
"""
    (entry,) = parse(text)
    assert entry == KnowledgeEntry(
        "opening-hours", "en", ("What are your opening hours?", "When is customer service open?"),
        "Our hotline is open Monday to Friday from 8 am to 8 pm.", ("hotline",),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("entries:\n  - id: a\n    language: en\n    questions: [q]\n", 2, 5, "missing 'answer'"),
        ("entries:\n  - id: a\n    language: fr\n    questions: [q]\n    answer: x\n", 3, 15, "'fr' is not supported"),
        ("entries:\n  - id: a\n    langauge: en\n", 3, 5, "unknown key 'langauge' (did you mean 'language'?)"),
        ("entries:\n  - {id: a, language: en, questions: [q], answer: x}\n  - {id: a, language: en, questions: [q],"
         " answer: y}\n", 3, 10, "duplicate id 'a' (first at line 2)"),
        ("entries:\n  - id: a\n    language: en\n    questions: []\n    answer: x\n", 4, 16, "needs at least one"),
        ("entries:\n  - id: 'bad id'\n    language: en\n    questions: [q]\n    answer: x\n", 2, 9, "letters, digits"),
        ("entries: [\n", 2, 1, "YAML syntax"),
        ("items: []\n", 1, 1, "unknown top-level key 'items'"),
        ("entries:\n  - id: a\n    language: en\n    questions: [q]\n    answer: ''\n", 5, 13, "must not be empty"),
    ],
)
def test_bad_files_are_reported_with_line_and_column(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(KnowledgeFileError) as caught:
        parse(text, "kb.yaml")
    located = [(p.line, p.column) for p in caught.value.problems]
    assert (line, column) in located, str(caught.value)
    assert any(message in p.message for p in caught.value.problems), str(caught.value)
    assert str(caught.value).startswith("kb.yaml:")


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    text = "entries:\n  - id: a\n    language: xx\n    questions: [q]\n    answer: x\n  - id: b\n    language: en\n"
    with pytest.raises(KnowledgeFileError) as caught:
        parse(text)
    assert len(caught.value.problems) >= 3  # bad language, b without questions, b without answer


def test_validate_checks_one_entry_by_the_same_rules() -> None:
    assert validate({"id": "x", "language": "zh", "questions": ["你好"], "answer": "您好"}).language == "zh"
    with pytest.raises(KnowledgeFileError):
        validate({"id": "x", "language": "en", "questions": ["q"]})


# ---- answering -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "language", "entry"),
    [
        ("What are your opening hours?", "en", "opening-hours"),
        ("I've forgotten my voicemail PIN", "en", "voicemail-pin"),
        ("how do i get a PAC code to leave", "en", "port-out-pac"),
        ("话费怎么交", "zh", "pay-bill-zh"),
        ("话费太贵了", "zh", "bill-higher-zh"),
    ],
)
def test_clear_questions_get_their_entry(bot: KnowledgeBot, question: str, language: str, entry: str) -> None:
    answer = ask(bot, question, language)
    assert answer.entry_id == entry, answer
    assert answer.answered and answer.answer and 0.5 < answer.confidence <= 1.0


@pytest.mark.parametrize(
    "question",
    ["whats the weather in london tomorrow", "how do i make a shepherd's pie", "tell me a joke",
     "who won the football last night", "今天天气怎么样"],
)  # fmt: skip
def test_out_of_scope_questions_get_no_answer(bot: KnowledgeBot, question: str) -> None:
    answer = ask(bot, question, detect_language(question))
    assert answer.entry_id is None and answer.answer is None and not answer.handoff


def test_a_mis_heard_question_is_still_understood(bot: KnowledgeBot) -> None:
    # "net work out age": speech recognition split both words
    assert ask(bot, "is there a net work out age in my area").entry_id == "network-outage"


@pytest.mark.parametrize(
    "text",
    ["agent", "can I talk to a real person", "put me through to an adviser please", "转人工", "我要人工客服",
     "opera tour"],
)  # fmt: skip
def test_requests_for_a_person_hand_off(bot: KnowledgeBot, text: str) -> None:
    answer = ask(bot, text, detect_language(text))
    assert answer.handoff and answer.entry_id is None


@pytest.mark.parametrize(
    "text",
    ["is a human going to read my complaint", "what time can i speak to a real person", "人工智能是什么",
     "how much does roaming cost"],
)  # fmt: skip
def test_mentions_of_people_are_not_handoffs(text: str) -> None:
    assert not is_handoff_request(text)


def test_follow_up_is_resolved_against_the_previous_topic(entries: list[KnowledgeEntry]) -> None:
    bot = KnowledgeBot(entries, context=ContextStore())
    first = ask(bot, "Can I use my phone in Europe?", conversation="c1")
    assert first.entry_id == "roaming-eu"
    follow_up = ask(bot, "and how much does it cost?", conversation="c1")
    assert follow_up.entry_id == "roaming-eu-cost", follow_up
    assert follow_up.extra.get("context") == "roaming-eu"
    # the same words without that history are not enough to answer
    assert ask(bot, "and how much does it cost?", conversation="other").entry_id is None


def test_context_is_per_conversation_and_expires(entries: list[KnowledgeEntry]) -> None:
    now = [0.0]
    context = ContextStore(ttl=60, clock=lambda: now[0])
    bot = KnowledgeBot(entries, context=context)
    ask(bot, "Can I use my phone in Europe?", conversation="c1")
    now[0] = 120.0
    assert ask(bot, "and how much does it cost?", conversation="c1").entry_id is None


def test_unsure_answers_offer_choices_and_a_choice_answers(entries: list[KnowledgeEntry]) -> None:
    bot = KnowledgeBot(entries, context=ContextStore())
    unsure = ask(bot, "how much does it cost", conversation="c2")  # which "it"? several entries fit
    assert unsure.entry_id is None
    assert len(unsure.suggestions) >= 2
    picked = ask(bot, "2", conversation="c2")
    assert picked.entry_id == unsure.suggestions[1].entry_id
    assert picked.extra.get("context") == "clarified"


def test_detect_language() -> None:
    assert detect_language("我的PUK码") == "zh"
    assert detect_language("my PUK code") == "en"


def test_empty_knowledge_base_never_answers() -> None:
    answer = KnowledgeBot([]).answer(BotRequest("What are your opening hours?", "en"))
    assert answer.entry_id is None and not answer.handoff


def test_replace_swaps_the_knowledge_base(entries: list[KnowledgeEntry]) -> None:
    bot = KnowledgeBot(entries)
    assert ask(bot, "What are your opening hours?").entry_id == "opening-hours"
    bot.replace([e for e in entries if e.id != "opening-hours"], revision=7)
    assert ask(bot, "What are your opening hours?").entry_id != "opening-hours"
    assert bot.revision == 7
