"""Bridge two call legs through our own media path, so both sides can be recorded and transcribed.

Each leg's inbound frames (one per media tick) are queued for playout on the other leg; DTMF is relayed as
RFC 4733 events. The bridge ends when either leg ends, and hangs up the other.
"""

from __future__ import annotations

import asyncio

import numpy as np

from telephony.call import Call

_SILENCE = np.zeros(160, dtype=np.int16)


class Bridge:
    def __init__(self, a: Call, b: Call) -> None:
        self.a = a
        self.b = b
        self._consumers = [(a, self._relay(b)), (b, self._relay(a))]

    @staticmethod
    def _relay(target: Call):
        def consume(frame: np.ndarray | None) -> None:
            if target.ended:
                return
            # Keep at most ~3 frames queued: the far side's clock and ours tick in step, so a longer queue
            # only means added delay.
            if target.stream.queued_frames > 3:
                return
            target.stream.play(frame if frame is not None else _SILENCE)

        return consume

    def start(self) -> None:
        for leg, consumer in self._consumers:
            leg.stop_playback()
            leg.add_audio_consumer(consumer)
        self.a.stream.on_dtmf = self._dtmf_relay(self.a, self.b)
        self.b.stream.on_dtmf = self._dtmf_relay(self.b, self.a)
        self.a.event("state", "bridged")
        self.b.event("state", "bridged")

    @staticmethod
    def _dtmf_relay(source: Call, target: Call):
        def relay(digit: str) -> None:
            source._digit_received(digit, "rfc4733")
            if not target.ended:
                target.send_dtmf(digit)

        return relay

    def stop(self) -> None:
        for leg, consumer in self._consumers:
            leg.remove_audio_consumer(consumer)

    async def run(self) -> str:
        """Run until one leg ends; hang up the other. Returns which leg ended first ("a" or "b").

        If the task running the bridge is cancelled (the caller's flow is torn down when the caller hangs
        up), every leg still up is hung up before the cancellation propagates: no leg is ever left bridged to
        nothing.
        """
        self.start()
        ended_a = asyncio.ensure_future(self.a.wait_ended())
        ended_b = asyncio.ensure_future(self.b.wait_ended())
        try:
            done, _ = await asyncio.wait({ended_a, ended_b}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            for leg in (self.a, self.b):
                leg.hangup("bridge_ended")
            raise
        finally:
            ended_a.cancel()
            ended_b.cancel()
            self.stop()
        first = "a" if ended_a in done else "b"
        other = self.b if first == "a" else self.a
        other.hangup("bridge_ended")
        return first
