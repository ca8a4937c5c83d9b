"""Knowledge base entries and their file format (import/export), with file:line:column for every problem.

The format is a contract other tools depend on::

    entries:
      - id: opening-hours
        language: en
        questions: [What are your opening hours?, When is customer service open?]
        answer: Our hotline is open Monday to Friday from 8 am to 8 pm.
        tags: [hotline]

Parsing validates the whole file before anything is imported, so a bad entry never half-imports a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

LANGUAGES = ("en", "zh")
ENTRY_KEYS = ("id", "language", "questions", "answer", "tags")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_QUESTIONS = 50
MAX_TEXT = 4000


@dataclass(frozen=True)
class KnowledgeEntry:
    id: str
    language: str
    questions: tuple[str, ...]
    answer: str
    tags: tuple[str, ...] = ()
    enabled: bool = True


@dataclass(frozen=True)
class Problem:
    line: int
    column: int
    message: str

    def located(self, filename: str) -> str:
        return f"{filename}:{self.line}:{self.column}: {self.message}"


@dataclass
class KnowledgeFileError(ValueError):
    """The file is not a valid knowledge base; `problems` has every finding, located."""

    filename: str
    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(p.located(self.filename) for p in self.problems)


def _at(node: yaml.Node, message: str) -> Problem:
    return Problem(node.start_mark.line + 1, node.start_mark.column + 1, message)


def _scalar_text(node: yaml.Node, what: str, problems: list[Problem], *, max_len: int = MAX_TEXT) -> str | None:
    if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
        problems.append(_at(node, f"{what} must be text"))
        return None
    text = str(node.value).strip()
    if not text:
        problems.append(_at(node, f"{what} must not be empty"))
        return None
    if len(text) > max_len:
        problems.append(_at(node, f"{what} is longer than {max_len} characters"))
        return None
    return text


def _text_list(node: yaml.Node, what: str, problems: list[Problem], *, allow_empty: bool) -> list[str] | None:
    if isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:null" and not allow_empty:
        text = _scalar_text(node, what, problems)  # a single question without brackets is fine
        return [text] if text else None
    if not isinstance(node, yaml.SequenceNode):
        if allow_empty and isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return []
        problems.append(_at(node, f"{what} must be a list"))
        return None
    values = [_scalar_text(item, f"each of {what}", problems) for item in node.value]
    if any(v is None for v in values):
        return None
    if not values and not allow_empty:
        problems.append(_at(node, f"{what} needs at least one item"))
        return None
    return [v for v in values if v is not None]


def _entry(node: yaml.Node, seen: dict[str, int], problems: list[Problem]) -> KnowledgeEntry | None:
    if not isinstance(node, yaml.MappingNode):
        problems.append(_at(node, "each entry must be a mapping with id, language, questions, answer, tags"))
        return None
    before = len(problems)
    fields: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key not in ENTRY_KEYS:
            hint = f" (did you mean {_closest(key)!r}?)" if _closest(key) else ""
            problems.append(_at(key_node, f"unknown key {key!r}{hint}; entries have {', '.join(ENTRY_KEYS)}"))
        elif key in fields:
            problems.append(_at(key_node, f"duplicate key {key!r}"))
        else:
            fields[key] = value_node
    for required in ("id", "language", "questions", "answer"):
        if required not in fields:
            problems.append(_at(node, f"entry is missing {required!r}"))
    entry_id = _scalar_text(fields["id"], "id", problems, max_len=128) if "id" in fields else None
    if entry_id is not None:
        if not _ID.fullmatch(entry_id):
            problems.append(_at(fields["id"], f"id {entry_id!r} may use letters, digits, '.', '_' and '-' only"))
        elif entry_id in seen:
            problems.append(_at(fields["id"], f"duplicate id {entry_id!r} (first at line {seen[entry_id]})"))
        else:
            seen[entry_id] = fields["id"].start_mark.line + 1
    language = _scalar_text(fields["language"], "language", problems) if "language" in fields else None
    if language is not None and language not in LANGUAGES:
        problems.append(_at(fields["language"], f"language {language!r} is not supported ({', '.join(LANGUAGES)})"))
    questions = (
        _text_list(fields["questions"], "questions", problems, allow_empty=False) if "questions" in fields else None
    )
    if questions is not None and len(questions) > MAX_QUESTIONS:
        problems.append(_at(fields["questions"], f"at most {MAX_QUESTIONS} questions per entry"))
    answer = _scalar_text(fields["answer"], "answer", problems) if "answer" in fields else None
    tags = _text_list(fields["tags"], "tags", problems, allow_empty=True) if "tags" in fields else []
    if len(problems) > before:
        return None
    assert entry_id and language and questions is not None and answer and tags is not None
    return KnowledgeEntry(entry_id, language, tuple(dict.fromkeys(questions)), answer, tuple(dict.fromkeys(tags)))


def _closest(key: str) -> str | None:
    import difflib

    match = difflib.get_close_matches(key, ENTRY_KEYS, n=1, cutoff=0.6)
    return match[0] if match else None


# libyaml's loader when PyYAML was built with it: 5,000 entries parse in ~8 s instead of ~28 s
# (bench/kb_latency); its marks carry the same line and column.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(text: str, filename: str = "<knowledge>") -> list[KnowledgeEntry]:
    """Entries of a knowledge file; `KnowledgeFileError` listing every problem (file:line:column) if invalid."""
    problems: list[Problem] = []
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise KnowledgeFileError(filename, [Problem(line, column, f"YAML syntax: {exc.problem or exc}")]) from None
    if root is None:
        raise KnowledgeFileError(filename, [Problem(1, 1, "the file is empty; expected 'entries:'")])
    if not isinstance(root, yaml.MappingNode):
        raise KnowledgeFileError(filename, [_at(root, "expected a mapping with one key, 'entries'")])
    entries_node: yaml.Node | None = None
    for key_node, value_node in root.value:
        if key_node.value == "entries":
            entries_node = value_node
        else:
            problems.append(_at(key_node, f"unknown top-level key {key_node.value!r}; only 'entries' is allowed"))
    if entries_node is None:
        problems.append(_at(root, "missing 'entries:'"))
        raise KnowledgeFileError(filename, problems)
    if not isinstance(entries_node, yaml.SequenceNode):
        problems.append(_at(entries_node, "'entries' must be a list"))
        raise KnowledgeFileError(filename, problems)
    seen: dict[str, int] = {}
    entries = [_entry(node, seen, problems) for node in entries_node.value]
    if problems:
        raise KnowledgeFileError(filename, problems)
    return [e for e in entries if e is not None]


def validate(raw: dict[str, Any], where: str = "entry") -> KnowledgeEntry:
    """One entry given as data (the API), checked by the same rules as a file."""
    document = yaml.safe_dump({"entries": [raw]}, allow_unicode=True, sort_keys=False)
    return parse(document, where)[0]


def dump(entries: Iterable[KnowledgeEntry]) -> str:
    """The file format, in the given order; `parse(dump(x)) == x` for enabled entries."""
    data = {
        "entries": [
            {"id": e.id, "language": e.language, "questions": list(e.questions), "answer": e.answer,
             "tags": list(e.tags)}
            for e in entries
        ]
    }  # fmt: skip
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120)


def by_id(entries: Sequence[KnowledgeEntry]) -> dict[str, KnowledgeEntry]:
    return {e.id: e for e in entries}
