"""Decoding yields the CPU to the media path.

The media clock has 20 ms to send every call's next packet; a recogniser can take whatever CPU is left. At
equal priority the pocketsphinx workers took both cores at 400 calls and the server's outbound RTP fell to
half rate (mean interval 49 ms, gaps of 0.5 s; bench/sip_load). At niceness 10 the scheduler gives the
server ~9x their share when both want the CPU, and decoding still gets every idle cycle.

Vosk decodes in threads of the server process; lowering those threads would let one that holds the GIL be
descheduled while the event loop waits for it (priority inversion), so they stay at normal priority.
"""

from __future__ import annotations

import contextlib
import os

DECODER_NICENESS = 10


def lower_this_process() -> None:
    """For a worker process (pocketsphinx)."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(DECODER_NICENESS)
