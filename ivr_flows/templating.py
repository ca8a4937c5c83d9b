"""Prompt and expression templates: Jinja2 in its sandbox, so a flow file can never reach Python internals.

Templates see the call's variables (`caller.number`, `call.id`, collected inputs, `last.*`, bot answers,
webhook results). A missing variable renders as empty text in prompts but is an error in conditions, where
silently reading "" would take the wrong branch.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

_prompts = ImmutableSandboxedEnvironment(undefined=Undefined, autoescape=False, keep_trailing_newline=False)
_conditions = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class TemplateError(ValueError):
    pass


@lru_cache(maxsize=4096)
def _template(source: str):  # type: ignore[no-untyped-def]
    try:
        return _prompts.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template error: {exc.message}") from None


@lru_cache(maxsize=4096)
def _expression(source: str):  # type: ignore[no-untyped-def]
    try:
        return _conditions.compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"expression error: {exc.message}") from None


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def render(source: str, variables: dict[str, Any]) -> str:
    if not is_template(source):
        return source
    try:
        return _template(source).render(variables)
    except TemplateError:
        raise
    except Exception as exc:  # sandbox violations, type errors in filters
        raise TemplateError(f"cannot render {source!r}: {exc}") from None


def render_value(value: Any, variables: dict[str, Any]) -> Any:
    """Render every string inside a JSON-like value (webhook bodies, `set` values)."""
    if isinstance(value, str):
        return render(value, variables)
    if isinstance(value, list):
        return [render_value(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: render_value(item, variables) for key, item in value.items()}
    return value


def evaluate(expression: str, variables: dict[str, Any]) -> Any:
    """Evaluate a condition such as `caller.number.startswith('+44') and attempts < 3`."""
    try:
        return _expression(expression)(**variables)
    except TemplateError:
        raise
    except Exception as exc:
        raise TemplateError(f"cannot evaluate {expression!r}: {exc}") from None


def check_template(source: str) -> set[str]:
    """Compile a template; return the top-level variable names it reads. Raises TemplateError."""
    try:
        return set(meta.find_undeclared_variables(_prompts.parse(source)))
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template error: {exc.message} (line {exc.lineno} of the template)") from None


def check_expression(source: str) -> set[str]:
    """Compile a condition; return the top-level variable names it reads. Raises TemplateError."""
    return check_template("{{ " + source + " }}")
