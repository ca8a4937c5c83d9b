"""Lint checks on the text a flow speaks and computes: templates, conditions, variables, language maps.

Kept apart from the graph checks because these read the raw YAML (where each string sits) rather than the
node graph. Every templated string is found here once, so a new templated field is added in one place.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from jinja2.defaults import DEFAULT_NAMESPACE

from ivr_flows.loader import LoadedYaml, Path_, Problem
from ivr_flows.schema import Flow, node_kind
from ivr_flows.templating import TemplateError, check_expression, check_template, is_template

# Variables every call has (see templating.py) plus Jinja's own globals (range, dict, ...).
BUILTIN_VARIABLES = frozenset({"caller", "call", "last", "language", "flow", "now", "bot", "http"}) | frozenset(
    DEFAULT_NAMESPACE
)
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_PROMPT_KEYS = ("prompt", "reprompt", "no_input_prompt", "no_match_prompt")


@dataclass
class _Use:
    """One string that reads variables, kept until every definition in the flow is known."""

    path: Path_
    names: set[str]


@dataclass
class PromptChecker:
    flow: Flow
    loaded: LoadedYaml
    problems: list[Problem] = field(default_factory=list)
    uses: list[_Use] = field(default_factory=list)
    _cache: dict[tuple[str, bool], set[str] | str] = field(default_factory=dict)

    def run(self) -> list[Problem]:
        data = self.loaded.data
        defaults = data.get("defaults")
        if isinstance(defaults, dict):
            for key in ("no_input_prompt", "no_match_prompt"):
                if key in defaults:
                    self._prompt(defaults[key], ("defaults", key))
        for name, node in self.flow.nodes.items():
            kind = node_kind(node)
            raw = data["nodes"][name][kind]
            self._node(kind or "", raw, ("nodes", name, kind or ""))
        self._undefined()
        return self.problems

    # ---- per node kind --------------------------------------------------------------------------
    def _node(self, kind: str, raw: Any, path: Path_) -> None:
        if kind == "say":
            if isinstance(raw, dict) and "text" in raw:
                self._prompt(raw["text"], (*path, "text"))
            else:
                self._prompt(raw, path)
            return
        if kind == "hangup" and isinstance(raw, str):
            self._prompt(raw, path)
            return
        if kind == "set":
            for key, value in raw.items():
                for sub, text in _strings(value, (*path, key)):
                    self._template(text, sub)
            return
        if kind == "branch":
            for index, case in enumerate(raw["cases"]):
                self._condition(case["when"], (*path, "cases", index, "when"))
            return
        if kind == "switch":
            value = raw["value"]
            if is_template(value):
                self._template(value, (*path, "value"))
            else:
                # Plain text renders as itself, so the same case would be taken on every call.
                message = f"switch value {value!r} is not a template, so it never changes (write {{{{ {value} }}}})"
                self._add((*path, "value"), message, severity="warning")
            return
        if not isinstance(raw, dict):
            return  # goto, language, subflow shorthand: nothing templated
        for key in _PROMPT_KEYS:
            if key in raw:
                self._prompt(raw[key], (*path, key))
        if kind == "transfer":
            for key in ("queue", "to"):
                self._template(raw.get(key), (*path, key))
        if kind == "http":
            self._template(raw["url"], (*path, "url"))
            for header, value in (raw.get("headers") or {}).items():
                self._template(value, (*path, "headers", header))
            if "json" in raw:
                for sub, text in _strings(raw["json"], (*path, "json")):
                    self._template(text, sub)

    # ---- prompts and language maps --------------------------------------------------------------
    def _prompt(self, value: Any, path: Path_) -> None:
        if isinstance(value, str):
            self._template(value, path)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._prompt(item, (*path, index))
        elif isinstance(value, dict):
            self._language_map(value, path)
            for key, item in value.items():
                self._prompt(item, (*path, key))

    def _language_map(self, value: dict[str, Any], path: Path_) -> None:
        # A map is a promise to speak each of the flow's languages; the default language counts when
        # the flow lists none, since that is what every call starts in.
        required = self.flow.languages or [self.flow.language]
        missing = [code for code in required if code not in value]
        if missing:
            listed = ", ".join(required)
            self._add(path, f"prompt has no text for {_words(missing)} (the flow's languages: {listed})")
        for key in value:
            if not _LANGUAGE_CODE.match(key):
                self._add(
                    (*path, key),
                    f"{key!r} is not a language code (expected e.g. en, zh, en-US)",
                    severity="warning",
                    prefer_key=True,
                )

    # ---- templates ------------------------------------------------------------------------------
    def _template(self, text: Any, path: Path_) -> None:
        """Check a prompt-style template. Plain text is skipped: the runner only renders templates."""
        if not isinstance(text, str) or not is_template(text):
            return
        self._compiled(text, path, expression=False)

    def _condition(self, text: str, path: Path_) -> None:
        if "{{" in text or "{%" in text:
            self._add(path, "a `when` condition is an expression: write it without {{ }} or {% %}")
            return
        self._compiled(text, path, expression=True)

    def _compiled(self, text: str, path: Path_, *, expression: bool) -> None:
        key = (text, expression)
        result = self._cache.get(key)
        if result is None:
            try:
                result = check_expression(text) if expression else check_template(text)
            except TemplateError as exc:
                result = _plain(str(exc), text, expression=expression)
            self._cache[key] = result
        if isinstance(result, str):
            self._add(path, result)
        elif result:
            self.uses.append(_Use(path, result))

    def _undefined(self) -> None:
        defined = set(BUILTIN_VARIABLES) | defined_variables(self.flow)
        for use in self.uses:
            for name in sorted(use.names - defined):
                close = difflib.get_close_matches(name, sorted(defined - BUILTIN_VARIABLES) or [], n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                message = f"variable {name!r} is never set in this flow (no store:, set: or map: names it){hint}"
                self._add(use.path, message, severity="warning")

    def _add(self, path: Path_, message: str, *, severity: str = "error", prefer_key: bool = False) -> None:
        self.problems.append(self.loaded.problem(path, message, severity=severity, prefer_key=prefer_key))


def defined_variables(flow: Flow) -> set[str]:
    """Variables a flow itself sets: `store:` of input/ask/record/http, `set:` keys, http `map:` keys.

    The runner also sets `question` when a menu takes its question exit and `transfer` after a failed
    transfer, so those count where such a node exists.
    """
    names: set[str] = set()
    for node in flow.nodes.values():
        kind = node_kind(node)
        action = getattr(node, kind or "", None)
        if kind == "set":
            names.update(action)
        elif kind in ("input", "ask", "record", "http"):
            names.add(action.store)
            if kind == "http":
                names.update(action.map)
        elif kind == "menu" and action.on.question:
            names.add("question")
        elif kind == "transfer":
            names.add("transfer")
    return names


# Jinja names the delimiters after its parser's tokens; say what the supervisor actually typed.
_TOKENS = (("'end of print statement'", "'}}'"), ("'end of statement block'", "'%}'"))
_LINE_SUFFIX = re.compile(r" \(line \d+ of the template\)$")


def _plain(message: str, text: str, *, expression: bool) -> str:
    if expression:
        message = message.replace("template error", "condition error").replace("'end of print statement'", "end")
    for token, typed in _TOKENS:
        message = message.replace(token, typed)
    if "\n" not in text:
        message = _LINE_SUFFIX.sub("", message)  # one line: the file position already says where
    return message


def _strings(value: Any, path: Path_) -> Iterator[tuple[Path_, str]]:
    """Every string inside a JSON-like value (webhook bodies, `set` values), with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))


def _words(items: list[str]) -> str:
    quoted = [repr(item) for item in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
