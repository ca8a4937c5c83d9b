"""The flow linter: everything that can be known about a flow without running it, located in its file.

Supervisors fix flows from these messages alone, so every problem names the exact line and column of the
offending key or value and, where a name is misspelt, the name that was probably meant. Linting never raises:
a crash would hide the very problems the supervisor asked about.

Errors make a flow unusable (the API refuses it, hot reload keeps the previous version); warnings are
things that are probably wrong but can run (an unreachable node, a variable nothing sets).
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from ivr_flows.graph import FALLBACKS, NEEDS_TARGET, Exit, exits, successors, waits_for_input
from ivr_flows.lint_prompts import PromptChecker
from ivr_flows.loader import FlowError, FlowSyntaxError, LoadedYaml, Problem, load_yaml, parse_flow
from ivr_flows.schema import Flow, node_kind

FLOW_SUFFIXES = (".yaml", ".yml")


@dataclass
class LintResult:
    flow: Flow | None  # None when the file is not a valid flow (syntax or schema errors)
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Parsed:
    file: str
    flow: Flow | None
    loaded: LoadedYaml | None
    problems: list[Problem]
    name: str | None  # the `flow:` name, read even from an invalid flow so other files can call it


def lint_text(text: str, file: str, *, known_flows: set[str] | None = None) -> LintResult:
    """Lint one flow. With `known_flows`, a subflow naming a flow outside that set is an error."""
    return _finish(_parse(text, file), known_flows)


def flow_files(paths: Iterable[Path]) -> list[Path]:
    """Files to lint: each file as given, and the *.yaml / *.yml files under each directory, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in FLOW_SUFFIXES and p.is_file()))
        else:
            files.append(path)
    return files


def lint_paths(paths: Sequence[Path]) -> list[Problem]:
    """Lint files and directories together; flows in one run may call each other as subflows."""
    parsed: list[_Parsed] = []
    for path in flow_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            parsed.append(_Parsed(str(path), None, None, [Problem(str(path), 1, 1, f"cannot read file: {exc}")], None))
            continue
        parsed.append(_parse(text, str(path)))
    known = {item.name for item in parsed if item.name}
    problems: list[Problem] = []
    seen: dict[str, _Parsed] = {}
    for item in parsed:
        problems.extend(_finish(item, known).problems)
        if item.name is None:
            continue
        first = seen.setdefault(item.name, item)
        if first is not item and item.loaded is not None:
            message = f"flow {item.name!r} is also defined in {first.file}; flow names must be unique"
            problems.append(item.loaded.problem(("flow",), message))
    return sorted(problems)


# ---- parsing ----------------------------------------------------------------------------------------
def _parse(text: str, file: str) -> _Parsed:
    try:
        flow, loaded = parse_flow(text, file)
        return _Parsed(file, flow, loaded, [], flow.flow)
    except FlowSyntaxError as exc:
        return _Parsed(file, None, None, [exc.problem], None)
    except yaml.reader.ReaderError as exc:  # control characters: the loader lets these through unlocated
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - before.rfind("\n")
        reason = f"YAML syntax error: {exc.reason} (character {exc.character!r})"
        return _Parsed(file, None, None, [Problem(file, line, column, reason)], None)
    except FlowError as exc:
        loaded = load_yaml(text, file)  # it parsed once already; only the schema failed
        name = loaded.data.get("flow") if isinstance(loaded.data, dict) else None
        return _Parsed(file, None, loaded, list(exc.problems), name if isinstance(name, str) else None)
    except Exception as exc:  # a bug in the loader must still come out as a message, not a traceback
        return _Parsed(file, None, None, [Problem(file, 1, 1, f"internal error while loading: {exc!r}")], None)


def _finish(parsed: _Parsed, known_flows: set[str] | None) -> LintResult:
    problems = list(parsed.problems)
    if parsed.flow is not None and parsed.loaded is not None:
        try:
            problems.extend(_check(parsed.flow, parsed.loaded, known_flows))
        except Exception as exc:
            problems.append(Problem(parsed.file, 1, 1, f"internal error while linting: {exc!r}"))
    unique = {(p.line, p.column, p.message, p.severity): p for p in problems}
    return LintResult(parsed.flow, sorted(unique.values()))


# ---- checks on a valid flow -------------------------------------------------------------------------
def _check(flow: Flow, loaded: LoadedYaml, known_flows: set[str] | None) -> list[Problem]:
    problems: list[Problem] = []
    names = list(flow.nodes)
    if flow.start not in flow.nodes:
        problems.append(
            loaded.problem(("start",), f"start node {flow.start!r} is not a node{_suggest(flow.start, names)}")
        )
    problems += _exit_problems(flow, loaded, names)
    graph = successors(flow)
    if flow.start in flow.nodes:
        problems += _unreachable(flow, loaded, graph)
    problems += _busy_loops(flow, loaded, graph)
    problems += _menu_speech(flow, loaded)
    if known_flows is not None:
        problems += _subflows(flow, loaded, known_flows)
    problems += PromptChecker(flow, loaded).run()
    return problems


def _suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _exit_problems(flow: Flow, loaded: LoadedYaml, names: list[str]) -> list[Problem]:
    problems: list[Problem] = []
    for name, node in flow.nodes.items():
        kind = node_kind(node) or ""
        node_exits = exits(name, node, flow)
        if kind in NEEDS_TARGET:
            missing = [e for e in node_exits if e.target is None]
            for exit_ in _without_fallbacks(kind, missing):
                # a failed transfer with nowhere to go ends the call: allowed (the design sketch does it), but
                # worth a warning; every other missing outcome would leave the runner with no next step
                severity = "warning" if kind == "transfer" else "error"
                message = _missing(kind, name, exit_.outcome)
                if severity == "warning":
                    message += "; if the transfer fails the call ends"
                problems.append(loaded.problem(exit_.path, message, prefer_key=True, severity=severity))
        # Several outcomes can share one value (a node's `next`); report each value once. A `next` that
        # every outcome overrides is still checked: it is a typo waiting for the day an `on:` entry goes.
        targets = {e.path: e.target for e in node_exits if e.target is not None}
        if node.next is not None:
            targets.setdefault(("nodes", name, "next"), node.next)
        for path, target in targets.items():
            if target not in flow.nodes:
                message = f"{_label(path)} of node {name!r} goes to {target!r}, which is not a node"
                problems.append(loaded.problem(path, message + _suggest(target, names)))
    return problems


def _label(path: tuple[str | int, ...]) -> str:
    """Name the YAML value that holds a target the way the supervisor wrote it."""
    if len(path) == 3:
        return f"{path[2]!r}"  # the node's next or goto
    if path[-2] == "on":
        return f"exit {path[-1]!r}"
    if path[-3] == "options":
        return f"option {path[-2]}"
    if path[-1] in ("else", "default"):
        return f"{path[-1]!r}"
    if path[-1] == "next":  # a branch case, 0-based in the data, counted from 1 for people
        return f"case {int(path[-2]) + 1}"
    return f"case {path[-1]!r}"  # a switch case


def _without_fallbacks(kind: str, missing: list[Exit]) -> list[Exit]:
    """Drop outcomes that fall back to another missing outcome (menu question -> no_match): fixing that
    one fixes both, so naming both would only pad the list."""
    chains = {e.outcome: FALLBACKS[kind].get(e.outcome, ()) for e in missing}
    return [
        e
        for e in missing
        if not any(
            other != e.outcome and len(chain) < len(chains[e.outcome]) and chains[e.outcome][-len(chain) :] == chain
            for other, chain in chains.items()
            if chain
        )
    ]


def _missing(kind: str, name: str, outcome: str) -> str:
    sources = FALLBACKS[kind].get(outcome, ("next",))
    hint = " or ".join([", ".join(sources[:-1]), sources[-1]] if len(sources) > 1 else list(sources))
    return f"{kind} {name!r}: no exit for {outcome} (set {hint})"


def _unreachable(flow: Flow, loaded: LoadedYaml, graph: dict[str, set[str]]) -> list[Problem]:
    reached = {flow.start}
    queue = deque([flow.start])
    while queue:
        for target in graph[queue.popleft()]:
            if target not in reached:
                reached.add(target)
                queue.append(target)
    return [
        loaded.problem(("nodes", name), f"node {name!r} is never reached from start {flow.start!r}",
                       severity="warning", prefer_key=True)
        for name in flow.nodes if name not in reached
    ]  # fmt: skip


def _busy_loops(flow: Flow, loaded: LoadedYaml, graph: dict[str, set[str]]) -> list[Problem]:
    """Cycles of nodes that never wait for the caller: the runner would spin without end.

    A cycle that no exit can leave is an error. One that a branch, switch, http or hours outcome can leave
    (a retry counter, a polling loop) may be intended, so it is a warning.
    """
    busy = {name for name, node in flow.nodes.items() if not waits_for_input(node)}
    sub = {name: graph[name] & busy for name in busy}
    order = {name: index for index, name in enumerate(flow.nodes)}
    problems: list[Problem] = []
    for component in strongly_connected(sub):
        first = min(component, key=order.__getitem__)
        if len(component) == 1 and first not in sub[first]:
            continue
        cycle = _cycle_through(first, component, sub, order)
        text = " -> ".join(cycle)
        leaves = any(
            e.target is None or e.target not in component
            for name in component
            for e in exits(name, flow.nodes[name], flow)
        )
        if leaves:
            message = f"possible infinite loop: {text} never waits for the caller unless a condition leaves it"
            problems.append(loaded.problem(("nodes", first), message, severity="warning", prefer_key=True))
        else:
            message = f"infinite loop: {text} never waits for the caller"
            problems.append(loaded.problem(("nodes", first), message, prefer_key=True))
    return problems


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative so a long chain of nodes cannot exhaust Python's recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, Iterable[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: set[str] = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    components.append(component)
    return components


def _cycle_through(first: str, component: set[str], graph: dict[str, set[str]], order: dict[str, int]) -> list[str]:
    """The shortest cycle from `first` back to itself inside one component, as node names."""
    parents: dict[str, str] = {}
    queue = deque([first])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node] & component, key=order.__getitem__):
            if child == first:
                path = [node]
                while path[-1] != first:
                    path.append(parents[path[-1]])
                return [*reversed(path), first]
            if child not in parents:
                parents[child] = node
                queue.append(child)
    return [first, first]  # pragma: no cover - a component with a cycle always has one through `first`


def _menu_speech(flow: Flow, loaded: LoadedYaml) -> list[Problem]:
    """Two options answering to the same phrase: the recognizer could not tell which one the caller meant."""
    problems: list[Problem] = []
    for name, node in flow.nodes.items():
        if node_kind(node) != "menu":
            continue
        owner: dict[str, str] = {}
        for key, option in node.menu.options.items():  # type: ignore[attr-defined]
            for position, phrase in enumerate(option.say_as):
                spoken = " ".join(phrase.casefold().split())
                other = owner.setdefault(spoken, key)
                if other != key:
                    path = ("nodes", name, "menu", "options", key, "say_as", position)
                    message = f"say_as {phrase!r} of option {key} is also said for option {other} (ambiguous speech)"
                    problems.append(loaded.problem(path, message))
    return problems


def _subflows(flow: Flow, loaded: LoadedYaml, known_flows: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    for name, node in flow.nodes.items():
        if node_kind(node) != "subflow":
            continue
        target = node.subflow.flow  # type: ignore[attr-defined]
        if target not in known_flows:
            raw = loaded.data["nodes"][name]["subflow"]
            path = ("nodes", name, "subflow", "flow") if isinstance(raw, dict) else ("nodes", name, "subflow")
            message = f"subflow {target!r} is not a known flow{_suggest(target, sorted(known_flows))}"
            problems.append(loaded.problem(path, message))
    return problems
