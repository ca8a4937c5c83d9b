"""Flow runner overhead per node step, with no I/O: what the runner itself costs between two prompts.

A ring of N nodes (set -> branch -> goto -> set ...) counts every lap in a variable; a branch leaves the
ring once the counter reaches its limit. The channel does nothing, so the time measured is the runner's
own work per step: node lookup, path and notes, templated `set` values, branch conditions, exits.
Workloads:

- mixed:  the set/branch/goto ring above (templates evaluated on every set and branch);
- goto:   a ring of goto nodes only (the bare cost of one step, no templates);
- say:    the mixed ring with a `say` (no-op channel) in place of every goto.

    python -m bench.flow_runner [--nodes 30] [--steps 60000] [--runs 7]

Prints µs per step (median, min, max over the runs) and the machine it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time

from bench.common import machine
from ivr_flows import runner as runner_module
from ivr_flows.channel import (
    Heard,
    ListenRequest,
    RecordRequest,
    RecordResult,
    TransferRequest,
    TransferResult,
)
from ivr_flows.loader import parse_flow
from ivr_flows.runner import FlowRunner
from ivr_flows.schema import Flow


class NullChannel:
    """A channel that accepts everything at once, so only the runner is measured."""

    kind = "bench"
    conversation_id = "bench"
    caller = "+15550100"

    async def say(
        self, text: str, *, interruptible: bool = True, language: str = "en", voice: str | None = None
    ) -> bool:
        return True

    async def prompt_and_listen(
        self, prompts: list[str], request: ListenRequest, *, language: str = "en", voice: str | None = None
    ) -> Heard:
        return Heard("no_input")

    async def transfer(self, request: TransferRequest) -> TransferResult:
        return TransferResult(True)

    async def record(self, request: RecordRequest) -> RecordResult:
        return RecordResult(None)

    async def hangup(self, reason: str = "flow_hangup") -> None:
        return None

    def note(self, type: str, value: str) -> None:
        return None


def ring_flow(kind: str, nodes: int, steps: int) -> Flow:
    """A flow whose run takes `steps` node steps (give or take one lap) through a ring of `nodes` nodes."""
    lines = ["flow: bench", "start: n0", "nodes:"]
    if kind == "goto":
        # No counter: the ring runs until the runner's step limit, which `measure` sets to `steps`.
        lines += [f"  n{i}: {{goto: n{(i + 1) % nodes}}}" for i in range(nodes)]
        return parse_flow("\n".join(lines) + "\n", "<bench>")[0]
    laps = max(1, steps // nodes)
    for i in range(nodes):
        following = f"n{(i + 1) % nodes}"
        role = i % 3
        if role == 0:
            lines.append(f'  n{i}: {{set: {{i: "{{{{ i + 1 }}}}"}}, next: {following}}}')
        elif role == 1:
            limit = laps * ((nodes + 2) // 3)  # one increment per set node per lap
            case = f"{{when: 'i >= {limit}', next: done}}"
            lines.append(f"  n{i}: {{branch: {{cases: [{case}], else: {following}}}}}")
        elif kind == "say":
            lines.append(f'  n{i}: {{say: "Step {{{{ i }}}}.", next: {following}}}')
        else:
            lines.append(f"  n{i}: {{goto: {following}}}")
    lines.append("  done: {hangup: true}")
    return parse_flow("\n".join(lines) + "\n", "<bench>")[0]


async def measure(flow: Flow, steps: int) -> tuple[float, int]:
    """Seconds for one run and the number of node steps it took."""
    runner = FlowRunner(flow, NullChannel(), variables={"i": 0})  # type: ignore[arg-type]
    started = time.perf_counter()
    result = await runner.run()
    elapsed = time.perf_counter() - started
    if result.outcome not in ("hangup", "error"):
        raise RuntimeError(f"unexpected outcome {result.outcome}: {result.error}")
    return elapsed, len(result.path)




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=30, help="nodes in the ring")
    parser.add_argument("--steps", type=int, default=60_000, help="node steps per run")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    logging.disable(logging.ERROR)  # the goto ring ends at the step limit, which the runner logs as an error
    # The real limit (10,000) stops a looping call; a benchmark run needs more steps for a stable figure.
    runner_module.MAX_STEPS = args.steps + 2 * args.nodes
    print(f"machine: {machine()}")
    print(f"ring of {args.nodes} nodes, ~{args.steps} steps per run, {args.runs} runs (+1 warm-up)")
    for kind in ("mixed", "goto", "say"):
        flow = ring_flow(kind, args.nodes, args.steps)
        if kind == "goto":
            runner_module.MAX_STEPS = args.steps
        asyncio.run(measure(flow, args.steps))  # warm-up: template caches, imports
        per_step = []
        for _ in range(args.runs):
            elapsed, steps = asyncio.run(measure(flow, args.steps))
            per_step.append(elapsed / steps * 1e6)
        print(
            f"{kind:>6}: {statistics.median(per_step):6.2f} µs/step median "
            f"(min {min(per_step):.2f}, max {max(per_step):.2f}; {steps} steps per run)"
        )
        runner_module.MAX_STEPS = args.steps + 2 * args.nodes


if __name__ == "__main__":
    main()
