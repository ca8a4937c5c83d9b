"""Running a command-line speech engine as an asyncio subprocess.

A child process needs no thread of ours and can be killed on time-out, which a stuck in-process engine cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil

from .base import SynthesisError


def find_binary(program: str, package: str) -> str:
    """Resolve `program` on PATH up front so a missing engine is reported as such, not as a failed prompt."""
    path = shutil.which(program)
    if path is None:
        raise SynthesisError(f"{program} not found on PATH; install the Debian package '{package}'")
    return path


async def run_engine(argv: list[str], *, stdin: bytes | None, timeout: float) -> bytes:
    """Run `argv`, feed `stdin`, return stdout; SynthesisError on non-zero exit or time-out.

    The child is killed (and reaped) on time-out or cancellation so no zombie engines pile up.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise SynthesisError(f"cannot start {argv[0]}: {exc}") from exc
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        raise SynthesisError(f"{argv[0]} did not finish within {timeout:g} s") from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            # Reap the child even if we are being cancelled, so it does not linger as a zombie.
            await asyncio.shield(proc.wait())
    if proc.returncode != 0:
        detail = stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}"
        raise SynthesisError(f"{argv[0]} failed: {detail}")
    return stdout
