"""Load flow YAML keeping where every key and value came from, so errors point at file:line:column.

Two YAML 1.1 surprises are removed: `on`, `off`, `yes`, `no` stay strings (flows use `on:` for exits), and
duplicate keys are an error instead of silently keeping the last one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ivr_flows.schema import NODE_KINDS, Flow

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True, order=True)
class Problem:
    """One lint finding. `severity` is "error" or "warning"."""

    file: str
    line: int
    column: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        tag = "" if self.severity == "error" else "warning: "
        return f"{self.file}:{self.line}:{self.column}: {tag}{self.message}"


class FlowSyntaxError(ValueError):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser: 7x faster, same nodes and marks


class _Loader(_Base):  # type: ignore[misc,valid-type]
    pass


# YAML 1.2 booleans only: true/false (any case). The 1.1 resolver would turn `on:` into True.
_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass
class LoadedYaml:
    data: Any
    file: str
    values: dict[Path_, Position] = field(default_factory=dict)  # where each value starts
    keys: dict[Path_, Position] = field(default_factory=dict)  # where each mapping key starts

    def position(self, path: Path_, *, prefer_key: bool = False) -> Position:
        """The best position for a path: exact if known, else the nearest ancestor's."""
        probe = tuple(path)
        while True:
            if prefer_key and probe in self.keys:
                return self.keys[probe]
            if probe in self.values:
                return self.values[probe]
            if probe in self.keys:
                return self.keys[probe]
            if not probe:
                return Position(1, 1)
            probe = probe[:-1]

    def problem(self, path: Path_, message: str, *, severity: str = "error", prefer_key: bool = False) -> Problem:
        pos = self.position(path, prefer_key=prefer_key)
        return Problem(self.file, pos.line, pos.column, message, severity)


def _reader_position(text: str, exc: yaml.YAMLError) -> tuple[int, int]:
    offset = getattr(exc, "position", None)
    if not isinstance(offset, int):
        return 1, 1
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _mark(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def load_yaml(text: str, file: str = "<flow>") -> LoadedYaml:
    """Parse YAML text into Python values plus the position of every key and value."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or exc.context or "invalid YAML"
        raise FlowSyntaxError(Problem(file, line, column, f"YAML syntax error: {reason}")) from None
    except yaml.YAMLError as exc:  # reader errors (control characters, bad encoding) carry no mark object
        line, column = _reader_position(text, exc)
        character = getattr(exc, "character", None)
        what = f" #x{ord(character) if isinstance(character, str) else character:04x}" if character is not None else ""
        reason = f"special characters{what} are not allowed" if character is not None else str(exc).split("\n")[0]
        raise FlowSyntaxError(Problem(file, line, column, f"YAML syntax error: {reason}")) from None
    finally:
        loader.dispose()
    loaded = LoadedYaml(data=None, file=file)
    if root is None:
        raise FlowSyntaxError(Problem(file, 1, 1, "the file is empty"))
    loaded.data = _build(root, (), loaded, loader)
    return loaded


def _build(node: yaml.Node, path: Path_, loaded: LoadedYaml, loader: _Loader) -> Any:
    loaded.values[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, int | float | bool) and not isinstance(key, bool):
                key = str(key_node.value)  # `1:` in a menu is the key "1"
            if not isinstance(key, str):
                pos = _mark(key_node)
                raise FlowSyntaxError(Problem(loaded.file, pos.line, pos.column, f"key {key!r} must be a string"))
            if key in result:
                pos = _mark(key_node)
                raise FlowSyntaxError(Problem(loaded.file, pos.line, pos.column, f"duplicate key {key!r}"))
            loaded.keys[(*path, key)] = _mark(key_node)
            result[key] = _build(value_node, (*path, key), loaded, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, index), loaded, loader) for index, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[Path_, bool]:
    """Turn a pydantic error location into a path in the YAML data, skipping union tags and aliases.

    Returns the path and whether it was fully resolved (False when the last element is a missing key).
    """
    path: list[str | int] = []
    current = data
    if len(loc) >= 3 and loc[0] == "nodes" and loc[2] in NODE_KINDS:
        loc = (*loc[:2], *loc[3:])  # the node-kind tag pydantic puts after the node name
    for element in loc:
        if (isinstance(current, dict) and element in current) or (
            isinstance(current, list) and isinstance(element, int) and element < len(current)
        ):
            path.append(element)
            current = current[element]
        elif isinstance(current, dict) and element == "otherwise" and "else" in current:
            path.append("else")
            current = current["else"]
        elif element in ("[key]",):
            continue
        else:
            if isinstance(element, str) and element in _TAGS:
                continue  # a union member tag inside a value (str | list | dict prompts, ...)
            return (*path, element), False
    return tuple(path), True


_TAGS = frozenset(
    [
        "function-after",
        "function-before",
        "function-plain",
        "str",
        "list[str]",
        "dict[str,union[str,list[str]]]",
        "bool",
        "int",
        "float",
    ]
)


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}"
    if kind == "missing":
        return f"missing required key {loc[-1]!r}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def validation_problems(error: ValidationError, loaded: LoadedYaml) -> list[Problem]:
    """Pydantic errors as Problems at the right YAML positions, one per distinct location and message."""
    problems: dict[tuple[int, int, str], Problem] = {}
    for item in error.errors():
        loc = tuple(item["loc"])
        path, resolved = _data_path(loaded.data, loc)
        message = _message(item)
        if item["type"] == "extra_forbidden":
            problem = loaded.problem(path, message, prefer_key=True)
        elif not resolved:
            problem = loaded.problem(path[:-1], message)
        else:
            problem = loaded.problem(path, message)
        problems.setdefault((problem.line, problem.column, problem.message), problem)
    return sorted(problems.values())


def parse_flow(text: str, file: str = "<flow>") -> tuple[Flow, LoadedYaml]:
    """Parse and validate one flow; raises FlowError with every schema problem located in the file."""
    loaded = load_yaml(text, file)
    if not isinstance(loaded.data, dict):
        raise FlowError([Problem(file, 1, 1, "a flow file must be a mapping with flow, start and nodes")])
    try:
        return Flow.model_validate(loaded.data), loaded
    except ValidationError as exc:
        raise FlowError(validation_problems(exc, loaded)) from None


class FlowError(ValueError):
    """A flow that cannot be used; `problems` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def load_flow_file(path: Path) -> tuple[Flow, LoadedYaml]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowError([Problem(str(path), 1, 1, f"cannot read file: {exc}")]) from None
    try:
        return parse_flow(text, str(path))
    except FlowSyntaxError as exc:
        raise FlowError([exc.problem]) from None
