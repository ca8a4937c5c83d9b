"""The walking skeleton's demo flow: greet, say back each key, hang up on '#'.

Written against `Channel` only, so the same flow runs on a call or in a text simulator. The YAML flow engine
replaces this with a flow file; the call path only ever asks "run this for the call".
"""

from __future__ import annotations

from ivr_flows.channel import Channel, ChannelClosed

SPOKEN_KEYS = {
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
    "*": "star",
    "#": "pound",
    "A": "A",
    "B": "B",
    "C": "C",
    "D": "D",
}
DEFAULT_GREETING = "Thanks for calling hotline. Press any key and I will say it back. Press pound to hang up."
IDLE_TIMEOUT = 30.0


async def run_demo(
    channel: Channel, *, greeting: str = DEFAULT_GREETING, idle_timeout: float = IDLE_TIMEOUT
) -> str:
    """Returns how it ended: "pound", "idle" or "closed"."""
    try:
        channel.note("state", "flow demo")
        await channel.say(greeting)
        while True:
            digit = await channel.next_digit(timeout=idle_timeout)
            if digit is None:
                await channel.say("We did not hear from you. Goodbye.", interruptible=False)
                await channel.hangup()
                return "idle"
            if digit == "#":
                await channel.say("Goodbye.", interruptible=False)
                await channel.hangup()
                return "pound"
            await channel.say(f"You pressed {SPOKEN_KEYS.get(digit, digit)}.")
    except ChannelClosed:
        return "closed"
