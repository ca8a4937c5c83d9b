"""Joins the call path to the call records: every call step goes to the CallLog as it happens."""

from __future__ import annotations

from callcenter_api.call_log import CallLog
from telephony.call import Call, utcnow


class CallRecords:
    """A `telephony.CallObserver` that writes through the non-blocking CallLog."""

    def __init__(self, log: CallLog) -> None:
        self.log = log

    def call_started(self, call: Call) -> None:
        self.log.call_started(
            call.id,
            sip_call_id=call.sip_call_id,
            from_uri=call.from_uri,
            to_uri=call.to_uri,
            at=call.started_at,
            remote_media=call.remote_media,
        )

    def call_answered(self, call: Call) -> None:
        self.log.call_answered(call.id, at=call.answered_at or utcnow(), codec=call.codec or "")
        if call.remote_media:
            self.log.call_updated(call.id, remote_media=call.remote_media)

    def call_event(self, call: Call, type: str, value: str) -> None:
        self.log.event(call.id, type, value, at=utcnow())

    def call_ended(self, call: Call) -> None:
        if call.answered_at is not None and call.remote_media:
            # symmetric RTP may have moved it to where the caller's packets really came from
            self.log.call_updated(call.id, remote_media=call.remote_media)
        self.log.call_ended(call.id, at=call.ended_at or utcnow(), reason=call.end_reason or "unknown")
