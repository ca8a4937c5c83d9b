"""Joins the call path to the records: every call step goes to the CallLog as it happens.

Two records come out of one call: the CDR with its raw events (what the telephony layer saw), and the call's
conversation in the customer's history, whose messages are the transcript a person reads (what the caller
said or pressed, what we said, what the bot decided). Both are written while the call runs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from callcenter_api.call_log import CallLog
from callcenter_api.history.identity import caller_identity
from callcenter_api.history.notes import NO_ANSWER_NOTE
from telephony.call import Call, utcnow

log = logging.getLogger(__name__)


@dataclass
class _Progress:
    """What the disposition depends on, gathered from the call's events."""

    started_at: datetime
    transferred: bool = False
    voicemail: bool = False
    callback: bool = False
    transfer_tried: bool = False


def disposition(call: Call, progress: _Progress) -> str:
    """contained / transferred / voicemail / callback / abandoned, the way a contact-center report counts them."""
    if progress.transferred:
        return "transferred"
    if progress.voicemail:
        return "voicemail"
    if progress.callback:
        return "callback"  # they keep their place in the queue; we call them back
    if call.answered_at is None or (progress.transfer_tried and call.end_reason == "caller_bye"):
        return "abandoned"  # never answered, or hung up while being put through
    return "contained"


class CallRecords:
    """A `telephony.CallObserver` that writes through the non-blocking CallLog."""

    def __init__(self, log: CallLog, *, phone_region: str | None = None) -> None:
        self.log = log
        self.phone_region = phone_region
        self._calls: dict[str, _Progress] = {}

    def call_started(self, call: Call) -> None:
        if call.direction == "outbound":
            # our own legs (agents' phones, callbacks): a CDR, but their words go to the customer's conversation
            self.log.call_started(call.id, sip_call_id=call.sip_call_id, from_uri=call.from_uri, to_uri=call.to_uri,
                                  at=call.started_at, remote_media=call.remote_media, conversation=False)  # fmt: skip
            return
        self._calls[call.id] = _Progress(call.started_at)
        self.log.call_started(
            call.id,
            sip_call_id=call.sip_call_id,
            from_uri=call.from_uri,
            to_uri=call.to_uri,
            at=call.started_at,
            remote_media=call.remote_media,
            caller=caller_identity(call.caller_number, call.from_uri, region=self.phone_region),
        )

    def call_answered(self, call: Call) -> None:
        self.log.call_answered(call.id, at=call.answered_at or utcnow(), codec=call.codec or "")
        if call.remote_media:
            self.log.call_updated(call.id, remote_media=call.remote_media)

    def call_event(self, call: Call, type: str, value: str) -> None:
        at = utcnow()
        self.log.event(call.id, type, value, at=at)
        progress = self._calls.get(call.id)
        if progress is None:
            if type == "recording" and call.direction == "inbound":
                self._late_recording(call.id, value, at)
            return  # an event after the end (late BYE handling): the CDR has it, the transcript is closed
        try:
            self._transcribe(call.id, progress, type, value, at)
        except (ValueError, KeyError, TypeError) as exc:  # a malformed event must never break the call
            log.warning("call %s: event %s=%r not added to the transcript: %s", call.id, type, value, exc)

    def _transcribe(self, call_id: str, progress: _Progress, type: str, value: str, at: datetime) -> None:
        offset = int((at - progress.started_at).total_seconds() * 1000)

        def message(sender: str, kind: str, text: str, **extra: object) -> None:
            self.log.message(call_id, sender=sender, kind=kind, text=text, at=at, offset_ms=offset, **extra)  # type: ignore[arg-type]

        if type == "prompt":
            message("bot", "prompt", value)
        elif type == "dtmf":
            message("caller", "dtmf", value)
        elif type == "utterance":
            heard = json.loads(value)
            meta = {k: heard[k] for k in ("engine", "grammar", "duration_ms", "error") if k in heard}
            message("caller", "utterance", heard.get("text", ""), confidence=heard.get("confidence"), meta=meta)
        elif type == "bot":
            decision = json.loads(value)
            if decision.get("handoff"):
                text = "bot: the caller asked for a person"
            elif decision.get("entry_id"):
                text = f"bot: answered with {decision['entry_id']}"
            else:
                text = NO_ANSWER_NOTE
            message("system", "note", text, confidence=decision.get("confidence"), meta=decision)
        elif type == "flow":
            if "@" in value and " " not in value:
                self.log.conversation_updated(call_id, flow=value)
        elif type == "language":
            self.log.conversation_updated(call_id, language=value)
        elif type == "queue":  # "<queue> entry <id>": the queue the caller waits in now (overflow moves it)
            self.log.conversation_updated(call_id, queue=value.split(" ", 1)[0])
        elif type == "callback":
            progress.callback = True
            message("system", "note", f"callback requested: {value}")
        elif type == "transfer":
            progress.transfer_tried = True
            if value.startswith("queue "):
                self.log.conversation_updated(call_id, queue=value.removeprefix("queue "), status="queued")
            if value.startswith(("bridged to ", "referred to ")):
                progress.transferred = True
                agent = value.removeprefix("bridged to ").removeprefix("referred to ")
                self.log.conversation_updated(call_id, status="agent", agent=agent)
            message("system", "note", f"transfer: {value}")
        elif type == "recording":
            info = json.loads(value)
            progress.voicemail = progress.voicemail or info.get("kind") == "voicemail"
            self.log.recording(
                call_id, recording_id=info["id"], kind=info.get("kind", "call"), path=info["path"], at=at,
                seconds=info.get("seconds"),
            )  # fmt: skip
            message("system", "recording", f"{info.get('kind', 'recording')} ({info.get('seconds', 0):.0f} s)",
                    meta={"recording_id": info["id"]})  # fmt: skip

    def _late_recording(self, call_id: str, value: str, at: datetime) -> None:
        """A recording closed after the call ended: a voicemail the caller finished by hanging up (the flow
        is torn down after the hang-up is recorded). It still gets its row, its transcript line and, for a
        voicemail, the disposition."""
        try:
            info = json.loads(value)
            kind = info.get("kind", "call")
            self.log.recording(call_id, recording_id=info["id"], kind=kind, path=info["path"], at=at,
                               seconds=info.get("seconds"))  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("call %s: late recording %r not recorded: %s", call_id, value, exc)
            return
        self.log.message(call_id, sender="system", kind="recording", text=f"{kind} ({info.get('seconds', 0):.0f} s)",
                         at=at, meta={"recording_id": info["id"]})  # fmt: skip
        if kind == "voicemail":
            self.log.conversation_updated(call_id, disposition="voicemail")

    def call_ended(self, call: Call) -> None:
        if call.answered_at is not None and call.remote_media:
            # symmetric RTP may have moved it to where the caller's packets really came from
            self.log.call_updated(call.id, remote_media=call.remote_media)
        ended_at = call.ended_at or utcnow()
        self.log.call_ended(call.id, at=ended_at, reason=call.end_reason or "unknown")
        if call.direction == "outbound":
            return
        progress = self._calls.pop(call.id, None) or _Progress(call.started_at)
        self.log.conversation_updated(
            call.id, ended_at=ended_at, status="closed", disposition=disposition(call, progress)
        )
