"""Lint time for a large flow: supervisors lint on every save and the API lints every upload.

Generates a flow of N nodes (default 500) in blocks of say -> menu -> input -> http -> branch, chained so every
node is reachable and every exit is set, checks that it lints clean, then reports the median of 5 timed runs
of `lint_text`, split into YAML loading, schema validation and the lint checks.

    python -m bench.flow_lint [--nodes 500] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.common import machine
from ivr_flows.lint import lint_text
from ivr_flows.loader import load_yaml
from ivr_flows.schema import Flow

BLOCK = ("say", "menu", "input", "http", "branch")




def generate(nodes: int) -> str:
    """A flow of exactly `nodes` nodes; the last block loops back to the first (through a menu, so no busy loop)."""
    blocks = -(-nodes // len(BLOCK))
    names = [f"{kind}_{block}" for block in range(blocks) for kind in BLOCK][:nodes]
    lines = ["flow: bench", "language: en", "languages: [en, zh]", f"start: {names[0]}", "nodes:"]
    for index, name in enumerate(names):
        kind, block = name.split("_")
        after = names[index + 1] if index + 1 < len(names) else names[0]
        skip = next((n for n in names[index + 1 :] if n.startswith("say_")), names[0])
        lines.append(f"  {name}:")
        if kind == "say":
            lines += [
                "    say:",
                f'      en: "Step {block} for {{{{ caller.number }}}}. Your balance is {{{{ balance_{block} }}}}."',
                f'      zh: "第{block}步 {{{{ caller.number }}}}"',
            ]
        elif kind == "menu":
            lines += [
                "    menu:",
                "      prompt: {en: Press 1 to continue or 2 to skip., zh: 请按1继续}",
                "      options:",
                f'        "1": {{say_as: [continue, next {block}], next: {after}}}',
                f'        "2": {{say_as: [skip, skip {block}], next: {skip}}}',
                f"      on: {{no_input: {skip}, no_match: {skip}}}",
            ]
        elif kind == "input":
            lines += [
                "    input:",
                f"      store: account_{block}",
                '      prompt: "Enter your account number, {{ caller.number }}."',
                "      pattern: '^[0-9]{4,8}$'",
                f"      on: {{no_input: {skip}, no_match: {skip}}}",
            ]
        elif kind == "http":
            lines += [
                "    http:",
                f'      url: "http://127.0.0.1:9/accounts/{{{{ account_{block} }}}}"',
                '      headers: {X-Call: "{{ call.id }}"}',
                f'      json: {{account: "{{{{ account_{block} }}}}", caller: "{{{{ caller.number }}}}"}}',
                f"      map: {{balance_{block}: account.balance}}",
                f"      on: {{error: {skip}}}",
            ]
        else:
            lines += [
                "    branch:",
                "      cases:",
                f"        - when: balance_{block} is not none and balance_{block} > 0",
                f"          next: {after}",
                f"      else: {skip}",
            ]
        if kind in ("say", "input", "http"):
            lines.append(f"    next: {after}")
    return "\n".join(lines) + "\n"


def timed(function, runs: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        function()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    text = generate(args.nodes)
    result = lint_text(text, "bench.yaml")
    if result.problems or result.flow is None or len(result.flow.nodes) != args.nodes:
        raise SystemExit("the generated flow does not lint clean:\n" + "\n".join(map(str, result.problems[:20])))
    total = timed(lambda: lint_text(text, "bench.yaml"), args.runs)
    loading = timed(lambda: load_yaml(text, "bench.yaml"), args.runs)
    data = load_yaml(text, "bench.yaml").data
    validating = timed(lambda: Flow.model_validate(data), args.runs)
    print(f"machine: {machine()}")
    print(f"flow: {args.nodes} nodes, {text.count(chr(10))} lines; median of {args.runs} runs")
    print(f"lint_text: {total * 1000:.1f} ms")
    print(f"  YAML load with positions: {loading * 1000:.1f} ms")
    print(f"  schema validation: {validating * 1000:.1f} ms")
    print(f"  lint checks (graph, templates, languages): {(total - loading - validating) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
