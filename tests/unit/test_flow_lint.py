"""The flow linter: exact positions and messages for broken flows, silence for good ones, and the CLI verdicts.

Each file in flows_broken/ holds one family of mistakes; EXPECTED lists every problem it must produce (and
nothing else), checked against the line and column of the offending text in that file.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hotline.cli import main
from ivr_flows.lint import lint_paths, lint_text
from ivr_flows.loader import load_yaml
from ivr_flows.schema import NODE_KINDS, flow_json_schema, node_kind

ROOT = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).parent / "flows_broken"
EXAMPLES = ROOT / "ivr_flows" / "examples"
DOCS = ROOT / "docs" / "flows.md"

E, W = "error", "warning"
EXPECTED: dict[str, list[tuple[int, int, str, str]]] = {
    "syntax.yaml": [(5, 17, E, "YAML syntax error: mapping values are not allowed")],
    "schema.yaml": [
        (6, 5, E, "unknown key 'nxt'"),
        (12, 16, E, "invalid regular expression: unterminated character set"),
        (16, 17, E, "unknown time zone 'Mars/Olympus'"),
        (18, 9, E, "fri: '18:00-09:00' ends before it starts"),  # the validator sees the whole `weekly` map
        (22, 12, E, "min_length is larger than max_length"),
        (26, 9, E, "option key '10' must be one DTMF key"),
    ],
    "dangling.yaml": [
        (2, 8, E, "start node 'greting' is not a node; did you mean 'greeting'?"),
        (12, 39, E, "exit 'no_match' of node 'menu' goes to 'agnet', which is not a node; did you mean 'agent'?"),
        (15, 14, W, "variable 'tier' is never set in this flow"),
        (16, 21, E, "case 'gold' of node 'billing' goes to 'vip', which is not a node"),
        (21, 17, W, "variable 'tier' is never set in this flow"),
        (23, 13, E, "'else' of node 'check' goes to 'hangup', which is not a node"),
        (25, 11, E, "'goto' of node 'jump' goes to 'menuu', which is not a node; did you mean 'menu'?"),
        (28, 11, E, "'next' of node 'agent' goes to 'byee', which is not a node; did you mean 'bye'?"),
    ],
    "missing_exits.yaml": [
        (5, 5, E, "menu 'main': no exit for no_input (set on.no_input or next)"),
        (5, 5, E, "menu 'main': no exit for no_match (set on.no_match or next)"),
        (10, 5, E, "input 'account': no exit for ok (set next)"),
        (13, 3, W, "node 'question' is never reached from start 'main'"),
        (14, 5, E, "ask 'question': no exit for no_answer (set on.no_answer or next)"),
        (16, 3, W, "node 'lookup' is never reached"),
        (17, 5, E, "http 'lookup': no exit for error (set on.error or next)"),
        (20, 3, W, "node 'open' is never reached"),
        (21, 5, E, "hours 'open': no exit for closed (set on.closed or next)"),
        (25, 3, W, "node 'agent' is never reached"),
        (26, 5, W, "transfer 'agent': no exit for failed (set on.failed or next); if the transfer fails the call ends"),
        (27, 3, W, "node 'covered' is never reached"),
    ],
    "unreachable.yaml": [
        (7, 3, W, "node 'orphan' is never reached from start 'hello'"),
        (10, 3, W, "node 'also_orphan' is never reached from start 'hello'"),
    ],
    "templates.yaml": [
        (7, 11, E, "template error: unexpected '}'"),
        (13, 9, E, "template error: Expected an expression, got '%}'"),
        (18, 15, W, "variable 'acount' is never set in this flow (no store:, set: or map: names it); "
                    "did you mean 'account'?"),
        (19, 17, E, "template error: No filter named 'nosuchfilter'"),
        (24, 12, E, "template error: unexpected '}'"),
        (25, 52, E, "template error: Expected an expression, got '}}'"),
        (26, 18, E, "template error: unexpected end of template, expected '}}'"),
        (26, 47, E, "template error: unexpected '}}'"),
        (31, 17, E, "template error: unexpected '}}'"),
        (37, 17, E, "condition error: unexpected end"),
        (39, 17, E, "a `when` condition is an expression: write it without {{ }}"),
        (41, 17, W, "variable 'teir' is never set in this flow (no store:, set: or map: names it); "
                    "did you mean 'tier'?"),
        (46, 14, W, "switch value 'tier' is not a template, so it never changes (write {{ tier }})"),
        (51, 14, E, "template error: unexpected end of template, expected '}}'"),
        (55, 20, E, "template error: unexpected '}'"),
    ],
    "languages.yaml": [
        (6, 20, E, "prompt has no text for 'zh' (the flow's languages: en, zh)"),
        (14, 9, E, "prompt has no text for 'zh'"),
        (15, 9, W, "'english' is not a language code"),
        (24, 15, E, "prompt has no text for 'en'"),
    ],
    "subflow.yaml": [(5, 14, E, "subflow 'billng' is not a known flow; did you mean 'billing'?")],
    "loops.yaml": [
        (7, 3, W, "possible infinite loop: ping -> retry -> bump -> ping never waits for the caller"),
        (20, 3, E, "infinite loop: spin -> again -> spin never waits for the caller"),
        (25, 3, E, "infinite loop: self -> self never waits for the caller"),
        (25, 3, W, "node 'self' is never reached from start 'count'"),
    ],
    "menu_speech.yaml": [
        (9, 33, E, "say_as 'Billing' of option 2 is also said for option 1 (ambiguous speech)"),
        (10, 46, E, "say_as 'invoice' of option 3 is also said for option 1"),
        (11, 24, E, "say_as 'technical support' of option 4 is also said for option 3"),
    ],
}  # fmt: skip
KNOWN_FLOWS = {"main", "billing", "dangling"}


def _lint_file(name: str):  # type: ignore[no-untyped-def]
    known = KNOWN_FLOWS if name == "subflow.yaml" else None
    return lint_text((BROKEN / name).read_text(encoding="utf-8"), name, known_flows=known)


def test_every_broken_flow_has_expectations() -> None:
    assert sorted(p.name for p in BROKEN.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_flow_problems_at_exact_positions(name: str) -> None:
    result = _lint_file(name)
    got = [(p.line, p.column, p.severity, p.message) for p in result.problems]
    listing = "\n".join(str(p) for p in result.problems)
    assert len(got) == len(EXPECTED[name]), listing
    for (line, column, severity, message), (e_line, e_column, e_severity, e_text) in zip(
        got, EXPECTED[name], strict=True
    ):
        assert (line, column, severity) == (e_line, e_column, e_severity), listing
        assert e_text in message, listing
    assert result.ok == (E not in {p.severity for p in result.problems})
    assert all(p.file == name for p in result.problems)


def test_positions_point_at_the_named_text() -> None:
    """Independent of the table: the column of a dangling target is where that word is in the file."""
    lines = (BROKEN / "dangling.yaml").read_text(encoding="utf-8").splitlines()
    for problem in _lint_file("dangling.yaml").errors:
        match = re.search(r"goes to '([^']+)'|start node '([^']+)'", problem.message)
        assert match, problem
        word = match.group(1) or match.group(2)
        assert lines[problem.line - 1][problem.column - 1 :].startswith(word), problem


VALID = """\
flow: all_kinds
language: en
languages: [en, zh]
start: open_now
defaults:
  no_input_prompt: {en: "Sorry, I did not hear you.", zh: 对不起。}
nodes:
  open_now:
    hours:
      timezone: Europe/London
      weekly: {mon: ["08:00-20:00"], sat: ["10:00-14:00"]}
      holidays: [2026-12-25]
      on: {open: welcome, closed: voicemail}
  welcome:
    say:
      text: {en: ["Welcome, {{ caller.number }}.", "Calls are recorded."], zh: 欢迎。}
      interruptible: false
    next: main
  main:
    menu:
      prompt: {en: Press 1 for your balance or 2 for Chinese., zh: 请按2。}
      options:
        "1": {say_as: [balance, my balance], next: account}
        "2": {say_as: [chinese], next: chinese}
      on: {question: faq, no_input: agent}
    next: agent
  chinese:
    language: zh
    next: main
  account:
    input:
      store: account
      min_length: 4
      max_length: 8
      pattern: "^[0-9]+$"
      prompt: {en: Enter your account number., zh: 请输入账号。}
      on: {no_input: agent, no_match: agent}
    next: lookup
  lookup:
    http:
      url: "http://127.0.0.1:9/accounts/{{ account }}"
      headers: {X-Call: "{{ call.id }}"}
      json: {account: "{{ account }}", tries: ["{{ tries }}"]}
      map: {balance: account.balance, tier: account.tier}
      on: {ok: remember, error: agent}
  remember:
    set: {tries: "{{ (tries | default(0)) + 1 }}", greeting: "Hi {{ caller.number }}"}
    next: route
  route:
    branch:
      cases:
        - when: balance is not none and balance > 100
          next: by_tier
      else: tell
  by_tier:
    switch:
      value: "{{ tier }}"
      cases: {gold: vip, default: tell}
    next: tell
  tell:
    say: {en: "Balance {{ balance }}. {% for i in range(2) %}{{ i }}{% endfor %}", zh: "余额 {{ balance }}"}
    next: again
  again:
    goto: main
  faq:
    ask: {store: answer, on: {answered: main, no_answer: agent}}
  vip:
    transfer: {queue: vip, priority: 10, skills: [billing], prompt: {en: Connecting., zh: 正在转接。}}
    next: voicemail
  agent:
    transfer: {to: "sip:agent@127.0.0.1", method: refer, on: {failed: voicemail}}
  voicemail:
    record: {prompt: {en: Leave a message., zh: 请留言。}, max_seconds: 60}
    next: identity
  identity:
    subflow: {flow: identity}
    next: bye
  bye:
    hangup: {prompt: {en: "Goodbye {{ question }} {{ answer.answer }}.", zh: 再见。}, reason: done}
"""


def test_valid_flow_with_every_node_kind_is_clean() -> None:
    result = lint_text(VALID, "all_kinds.yaml", known_flows={"identity"})
    assert result.problems == []
    assert result.ok and result.flow is not None
    assert {node_kind(node) for node in result.flow.nodes.values()} == set(NODE_KINDS)


def test_lint_finds_one_planted_mistake_in_the_valid_flow() -> None:
    """The clean result above is not blindness: change one word and exactly that is reported."""
    broken = VALID.replace("        - when: balance is not none", "        - when: balanse is not none")
    problems = lint_text(broken, "f.yaml").problems
    assert [(p.line, p.column, p.severity) for p in problems] == [(52, 17, W)]
    assert "'balanse'" in problems[0].message and "did you mean 'balance'?" in problems[0].message


def test_subflow_names_are_checked_only_when_flows_are_known() -> None:
    assert lint_text(VALID, "f.yaml").ok
    result = lint_text(VALID, "f.yaml", known_flows={"identify"})
    assert [str(p) for p in result.problems] == [
        "f.yaml:76:21: subflow 'identity' is not a known flow; did you mean 'identify'?"
    ]


def test_shipped_examples_lint_clean_together() -> None:
    assert list(EXAMPLES.glob("*.yaml"))
    assert [str(p) for p in lint_paths([EXAMPLES])] == []


@pytest.mark.parametrize(
    "text",
    ["", "  \n", "- a\n- b\n", "flow: x\n", "flow: x\x00\n", "nodes: [\n", "{{", "flow: [1]\n", "? [a]\n: b\n"],
)
def test_lint_never_raises_and_reports_an_error(text: str) -> None:
    result = lint_text(text, "odd.yaml")
    assert result.flow is None and not result.ok
    assert all(p.file == "odd.yaml" and p.line >= 1 and p.column >= 1 for p in result.problems)


def test_control_character_is_located() -> None:
    [problem] = lint_text("flow: x\nstart: \x07y\n", "f.yaml").problems
    assert (problem.line, problem.column) == (2, 8) and "special characters" in problem.message


def test_long_chain_lints_quickly_without_recursion_limits() -> None:
    nodes = "".join(f"  n{i}: {{set: {{x{i}: {i}}}, next: n{i + 1}}}\n" for i in range(3000))
    text = f"flow: chain\nstart: n0\nnodes:\n{nodes}  n3000: {{goto: n0}}\n"
    [problem] = lint_text(text, "chain.yaml").problems
    assert problem.message.startswith("infinite loop: n0 -> n1 -> n2") and (problem.line, problem.column) == (4, 3)


def test_lint_paths_sees_flows_across_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "main.yml").write_text(
        "flow: main\nstart: a\nnodes:\n  a: {subflow: identify, next: b}\n  b: {hangup: true}\n"
    )
    (tmp_path / "sub" / "identify.yaml").write_text("flow: identify\nstart: a\nnodes:\n  a: {say: Hi.}\n")
    (tmp_path / "notes.txt").write_text("not a flow")
    assert lint_paths([tmp_path]) == []
    (tmp_path / "copy.yaml").write_text("flow: identify\nstart: a\nnodes:\n  a: {subflow: idenitfy}\n")
    problems = lint_paths([tmp_path])
    # copy.yaml sorts first, so the older sub/identify.yaml is the one told its name is taken
    assert [(Path(p.file).name, p.line, p.column) for p in problems] == [("copy.yaml", 4, 16), ("identify.yaml", 1, 7)]
    assert "did you mean 'identify'?" in problems[0].message
    taken = f"flow 'identify' is also defined in {tmp_path / 'copy.yaml'}; flow names must be unique"
    assert problems[1].message == taken


def test_lint_paths_sorts_and_reports_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_bytes(b"\xff\xfe flow")
    problems = lint_paths([BROKEN / "unreachable.yaml", tmp_path / "bad.yaml", tmp_path / "missing.yaml"])
    assert problems == sorted(problems)
    messages = {Path(p.file).name: p.message for p in problems}
    assert messages["bad.yaml"].startswith("cannot read file") and messages["missing.yaml"].startswith("cannot read")


# ---- CLI ---------------------------------------------------------------------------------------------
def test_cli_lint_output_and_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "good.yaml"
    good.write_text(VALID.replace("subflow: {flow: identity}", "say: Hi."))
    result = runner.invoke(main, ["flow", "lint", str(good)])
    assert (result.exit_code, result.output) == (0, "0 errors, 0 warnings in 1 file\n")

    warn = BROKEN / "unreachable.yaml"
    result = runner.invoke(main, ["flow", "lint", str(warn)])
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        f"{warn}:7:3: warning: node 'orphan' is never reached from start 'hello'",
        f"{warn}:10:3: warning: node 'also_orphan' is never reached from start 'hello'",
        "0 errors, 2 warnings in 1 file",
    ]
    assert runner.invoke(main, ["flow", "lint", "--strict", str(warn)]).exit_code == 1

    result = runner.invoke(main, ["flow", "lint", str(BROKEN / "subflow.yaml"), str(good)])
    assert result.exit_code == 1
    assert result.output.splitlines()[0].endswith("subflow.yaml:5:14: subflow 'billng' is not a known flow")
    # only flows linted together are known: subflow.yaml's call to 'dangling' is unknown here too
    assert result.output.splitlines()[-1] == "2 errors, 0 warnings in 2 files"

    assert runner.invoke(main, ["flow", "lint", str(tmp_path / "nope.yaml")]).exit_code == 2
    (tmp_path / "empty").mkdir()
    assert runner.invoke(main, ["flow", "lint", str(tmp_path / "empty")]).exit_code == 2


def test_cli_summary_counts_the_whole_broken_directory() -> None:
    result = CliRunner().invoke(main, ["flow", "lint", str(BROKEN)])
    problems = lint_paths([BROKEN])
    errors = sum(p.severity == E for p in problems)
    assert errors and result.exit_code == 1
    expected = f"{errors} errors, {len(problems) - errors} warnings in {len(EXPECTED)} files"
    assert result.output.splitlines()[-1] == expected
    assert len(result.output.splitlines()) == len(problems) + 1


def test_real_process_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("flow: tiny\nstart: a\nnodes:\n  a: {say: Hello.}\n")
    command = [sys.executable, "-m", "hotline", "flow", "lint"]
    ok = subprocess.run([*command, str(good)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert (ok.returncode, ok.stdout) == (0, "0 errors, 0 warnings in 1 file\n"), ok.stderr
    bad = subprocess.run([*command, str(BROKEN / "loops.yaml")], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert bad.returncode == 1
    assert f"{BROKEN / 'loops.yaml'}:20:3: infinite loop: spin -> again -> spin" in bad.stdout


# ---- JSON Schema and docs ----------------------------------------------------------------------------
def test_cli_schema_is_the_flow_json_schema() -> None:
    result = CliRunner().invoke(main, ["flow", "schema"])
    assert result.exit_code == 0
    assert json.loads(result.output) == json.loads(json.dumps(flow_json_schema()))


def _schema_errors(text: str) -> list[str]:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(flow_json_schema())
    as_json = json.loads(json.dumps(load_yaml(text).data, default=str))  # dates as an editor sees them: text
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(as_json)]


def test_json_schema_accepts_a_good_flow_and_rejects_mistakes() -> None:
    long_form = VALID.replace("subflow: {flow: identity}", "say: {text: Hi.}")
    tell = re.search(r"^    say: (\{en: \"Balance.*\})$", long_form, flags=re.M)
    assert tell
    long_form = long_form.replace(tell[0], f"    say: {{text: {tell[1]}}}")  # the schema knows only long forms
    assert _schema_errors(long_form) == []
    assert _schema_errors(long_form.replace("    next: route", "    nxt: route"))
    assert _schema_errors(long_form.replace("priority: 10", "priority: high"))


def test_json_schema_accepts_shorthands() -> None:
    assert _schema_errors("flow: s\nstart: a\nnodes:\n  a: {say: Hi., next: b}\n  b: {hangup: Bye.}\n") == []


def test_docs_explain_editor_setup_and_their_flows_lint_clean() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert "# yaml-language-server: $schema=" in text and "hotline flow schema >" in text
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    flows = [b for b in blocks if re.search(r"^nodes:", b, flags=re.M)]
    fragments = [b for b in blocks if b.startswith("  ")]
    assert len(flows) >= 2 and len(fragments) >= 5
    for block in flows:
        assert lint_text(block, "docs.yaml").problems == [], block
    for block in fragments:  # node snippets: valid nodes and templates, whatever they point to
        result = lint_text("flow: doc\nstart: x\nnodes:\n" + block, "docs.yaml")
        assert result.flow is not None, [str(p) for p in result.problems]
        assert not [p for p in result.problems if "error:" in p.message], [str(p) for p in result.problems]


def test_shipped_json_schema_file_is_current() -> None:
    """ivr_flows/flow.schema.json is what editors load (yaml-language-server); it must match the models."""
    import json
    from pathlib import Path

    from ivr_flows.schema import flow_json_schema

    shipped = Path(__file__).resolve().parents[2] / "ivr_flows" / "flow.schema.json"
    hint = "run: hotline flow schema > ivr_flows/flow.schema.json"
    assert json.loads(shipped.read_text()) == flow_json_schema(), hint
