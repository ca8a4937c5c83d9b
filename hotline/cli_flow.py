"""`hotline flow ...`: the supervisor's tools for flow files, usable in CI without a running service.

Output is one `file:line:column: message` per problem so editors and CI logs can jump to it; the exit code is
the verdict (0 clean, 1 problems that fail the run, 2 bad usage).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from bot.engine import KnowledgeBot
from bot.interface import Bot, KeywordBot
from bot.knowledge import KnowledgeFileError
from bot.knowledge import parse as parse_kb
from hotline.settings import DEMO_KB
from ivr_flows.channel import ChannelClosed, Heard, ListenRequest
from ivr_flows.lint import flow_files, lint_paths, lint_text
from ivr_flows.loader import FlowError, FlowSyntaxError, load_flow_file, load_yaml, validation_problems
from ivr_flows.runner import FlowLookup, FlowRunner
from ivr_flows.schema import Flow, flow_json_schema
from ivr_flows.simulator import Script, SimulationResult, TextChannel, parse_console_line
from ivr_flows.simulator import simulate as run_simulation


@click.group(help="Lint, export the schema of, and simulate IVR flow files.")
def flow() -> None:
    pass


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@flow.command(help="Check flow files (or directories of *.yaml / *.yml) and report every problem.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
def lint(paths: tuple[Path, ...], strict: bool) -> None:
    files = flow_files(paths)
    if not files:
        raise click.UsageError("no *.yaml or *.yml flow files found in " + ", ".join(map(str, paths)))
    problems = lint_paths(files)
    for problem in problems:
        click.echo(str(problem))
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    click.echo(f"{_count(errors, 'error')}, {_count(warnings, 'warning')} in {_count(len(files), 'file')}")
    sys.exit(1 if errors or (strict and warnings) else 0)


@flow.command(help="Print the JSON Schema of flow files (for yaml-language-server and other editors).")
def schema() -> None:
    click.echo(json.dumps(flow_json_schema(), indent=2))


# ---- simulate ----------------------------------------------------------------------------------------
def _load_flows(directory: Path) -> dict[str, Flow]:
    """Every flow in a directory, for subflow lookups (files that do not load are skipped here; lint says why)."""
    flows: dict[str, Flow] = {}
    for path in flow_files([directory]):
        try:
            loaded, _ = load_flow_file(path)
        except FlowError:
            continue
        flows[loaded.flow] = loaded
    return flows


def _print_result(result: SimulationResult) -> None:
    for who, text in result.transcript:
        click.echo(f"  {who:>6}: {text}")
    click.echo("path: " + " -> ".join(result.path))
    click.echo(f"end: {result.outcome} at {result.end_node}")
    for failure in result.failures:
        click.echo(f"FAIL: {failure}")
    click.echo("PASS" if result.passed else "FAILED")


@flow.command(help="Run a flow on a text channel: interactive, or scripted with --script for CI.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--script",
    "script_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML script of caller inputs and expectations (see docs/flows.md).",
)
@click.option(
    "--flows",
    "flows_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory with the flows that subflow nodes call [the FILE's directory].",
)
@click.option("--caller", default=None, help="Caller number (interactive mode).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (scripted mode).")
@click.option(
    "--kb",
    "kb_file",
    default=str(DEMO_KB),
    show_default="the demo knowledge base",
    help="Knowledge file the `ask` nodes' bot answers from ('none': a keyword bot that only detects handoffs).",
)
def simulate(
    file: Path, script_file: Path | None, flows_dir: Path | None, caller: str | None, as_json: bool, kb_file: str
) -> None:
    bot = _bot(kb_file)
    result = lint_text(file.read_text(encoding="utf-8"), str(file))
    for problem in result.errors:
        click.echo(str(problem), err=True)
    if result.flow is None or result.errors:
        sys.exit(1)
    flows = _load_flows(flows_dir or file.parent)
    flows[result.flow.flow] = result.flow

    def lookup(name: str) -> tuple[Flow, int | None] | None:
        return (flows[name], None) if name in flows else None

    if script_file is None:
        _interactive(result.flow, lookup, caller, bot)
        return
    try:
        loaded = load_yaml(script_file.read_text(encoding="utf-8"), str(script_file))
        script = Script.model_validate(loaded.data)
    except FlowSyntaxError as exc:
        raise click.ClickException(str(exc.problem)) from None
    except ValidationError as exc:
        raise click.ClickException("\n".join(str(p) for p in validation_problems(exc, loaded))) from None
    outcome = asyncio.run(run_simulation(result.flow, script, flows=lookup, bot=bot))
    if as_json:
        click.echo(json.dumps(outcome.as_dict(), indent=2, ensure_ascii=False))
    else:
        _print_result(outcome)
    sys.exit(0 if outcome.passed else 1)


def _bot(kb_file: str) -> Bot:
    """The knowledge bot over a file (the same engine as calls and chat), or the keyword bot."""
    if kb_file.strip().lower() in ("", "none"):
        return KeywordBot()
    path = Path(kb_file)
    try:
        entries = parse_kb(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--kb") from None
    except KnowledgeFileError as exc:
        raise click.ClickException(f"--kb {path} is not a valid knowledge file:\n{exc}") from None
    return KnowledgeBot(entries)


def _interactive(flow_: Flow, lookup: FlowLookup, caller: str | None, bot: Bot) -> None:
    click.echo(
        f"Simulating {flow_.flow}. Type what the caller says; #123 presses keys 1 2 3 (## is #); "
        "an empty line is silence; Ctrl-D hangs up."
    )

    def next_input(request: ListenRequest) -> Heard:
        try:
            line = input("caller> ")
        except EOFError:
            raise ChannelClosed("simulation") from None
        return parse_console_line(line)

    channel = TextChannel(next_input, caller=caller, on_output=lambda who, text: click.echo(f"{who:>6}: {text}"))
    runner = FlowRunner(flow_, channel, bot=bot, flows=lookup)
    outcome = asyncio.run(runner.run())
    click.echo("path: " + " -> ".join(outcome.path))
    click.echo(f"end: {outcome.outcome} at {outcome.end_node}")
