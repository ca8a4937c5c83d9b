"""The running service: SIP endpoint + media clock + HTTP API + call records in one process and one loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Iterator

import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from asr import create_engine as create_asr_engine
from asr.recognizer import Engine
from bot.engine import KnowledgeBot
from callcenter_api import flow_store, kb_store
from callcenter_api.app import create_app
from callcenter_api.call_log import CallLog
from callcenter_api.db import make_engine, make_session_factory, migrate
from callcenter_api.event_relay import PostgresEventRelay
from callcenter_api.events import EventHub
from callcenter_api.kb_sync import KnowledgeSync
from callcenter_api.routes.flows import FLOWS_TOPIC
from callcenter_api.routing import config as callcenter_config
from callcenter_api.routing.router import Router
from hotline.acd import Acd
from hotline.flow_watcher import start_flows
from hotline.gcwatch import settle_after_startup
from hotline.hold_music import HoldMusic
from hotline.listen import SpeechSettings
from hotline.queue_call import QueueServices, Taps
from hotline.records import CallRecords
from hotline.settings import Settings
from hotline.taps import CallTaps
from hotline.voice import VoiceChannel
from ivr_flows.registry import FlowRegistry
from ivr_flows.runner import FlowRunner
from recordings.writer import RecordingWriter
from telephony.call import Call, utcnow
from telephony.endpoint import SipEndpoint
from tts import create_synthesizer

log = logging.getLogger("hotline")


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop: we own the signals, so SIGTERM also hangs up the calls."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Service:
    flows: FlowRegistry

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = False
        self.endpoint: SipEndpoint | None = None
        self.call_log: CallLog | None = None
        self.relay: PostgresEventRelay | None = None  # live events between workers (PostgreSQL only)
        self._background: set[asyncio.Task[object]] = set()
        self.hold_music = HoldMusic()  # queues' music files, decoded once (checked at start-up)
        self._stop = asyncio.Event()

    async def handle_call(self, call: Call) -> None:
        """What runs for each answered call. The call path knows nothing more about flows than this.

        The flow is chosen by the dialed user (sip:carrier_en@host runs flow carrier_en) or the default flow,
        and pinned with every subflow's live version for the whole call: reloads never touch running calls.
        """
        snapshot = self.flows.snapshot()
        dialed = call.to_uri.split(":", 1)[-1].split("@", 1)[0] if "@" in call.to_uri else ""
        live = snapshot.get(dialed) or snapshot.get(self.settings.default_flow)
        if live is None:
            log.error("no live flow for %s (default %r): hanging up", call.to_uri, self.settings.default_flow)
            call.event("state", "no flow")
            return
        assert self.call_log is not None
        self.call_log.call_updated(call.id, flow=live.label)
        self.call_log.conversation_updated(call.id, flow=live.label, language=live.flow.language)
        call.event("flow", live.label)
        channel = VoiceChannel(
            call, self.synthesizer, voice=self.settings.tts_voice, queue_targets=self.settings.queue_targets,
            recordings=self.recordings, asr=self.asr, speech_settings=self.speech_settings,
            queues=self.queue_services, recording=live.flow.defaults.recording,
        )  # fmt: skip
        try:
            await channel.start(language=live.flow.language, voice=live.flow.defaults.voice)
            runner = FlowRunner(live.flow, channel, version=live.version, bot=self.bot, flows=snapshot)
            result = await runner.run()
            call.event("flow_end", f"{result.outcome} at {result.end_node}")
        finally:
            await channel.aclose()

    async def run(self) -> None:
        settings = self.settings
        token, generated = settings.ensure_admin_token()
        await asyncio.to_thread(migrate, settings.db)
        engine = make_engine(settings.db)
        session_factory = make_session_factory(engine)
        hub = EventHub()
        loop = asyncio.get_running_loop()
        hub.bind(loop)
        self.call_log = CallLog(session_factory, publish=hub.publish)  # a call's transcript reaches consoles live
        self.call_log.start()
        self.recordings = RecordingWriter(settings.recordings_dir)
        self.bot = KnowledgeBot()
        self.kb_sync = KnowledgeSync(self.bot, session_factory)
        await asyncio.to_thread(self._load_knowledge)
        self.kb_sync.start()
        self.asr = await asyncio.to_thread(self._load_asr)
        self.speech_settings = SpeechSettings(
            barge_in_ms=settings.barge_in_ms, min_confidence=settings.asr_min_confidence
        )
        self.flows, watcher = await start_flows(settings.flows_path, session_factory)
        watching = asyncio.ensure_future(watcher.run())
        self.synthesizer = create_synthesizer(
            settings.tts_engine, cache_dir=settings.tts_cache_dir, voice=settings.tts_voice
        )
        await asyncio.to_thread(self._apply_callcenter, session_factory)
        worker = settings.worker_id or f"{socket.gethostname()}-{os.getpid()}"

        def publish(topic: str, event: dict[str, object]) -> None:
            hub.publish(topic, event)
            if event.get("state") in ("available", "waiting"):  # an agent or a customer became free to match
                loop.call_soon_threadsafe(self.acd.poke)

        self.router = Router(session_factory, worker=worker, publish=publish)
        self.acd = Acd(self.router)
        self.acd.start()
        if engine.dialect.name == "postgresql":  # several workers may share it: their consoles' events too

            def remote(topic: str, event: dict[str, object]) -> None:
                if event.get("state") in ("available", "waiting"):  # a match another worker's change allows
                    self.acd.poke()
                elif topic == FLOWS_TOPIC and event.get("type") == "flow_live":  # activated on another worker
                    name, version = str(event["name"]), int(event["version"])  # type: ignore[call-overload]
                    self._keep(asyncio.ensure_future(asyncio.to_thread(self._follow_flow, session_factory,
                                                                       name, version)))  # fmt: skip

            self.relay = PostgresEventRelay(hub, settings.db, origin=worker, on_remote=remote)
            await self.relay.start()
        self.queue_services = QueueServices(
            self.router, self.acd, taps=self._taps, keep=self._keep, written=self.call_log.flush,
            music=self.hold_music,
        )
        if settings.recordings_retention_days:
            from hotline.cli_recordings import prune_periodically

            self._keep(asyncio.ensure_future(
                prune_periodically(session_factory, settings.recordings_dir, settings.recordings_retention_days)
            ))  # fmt: skip
        self.endpoint = SipEndpoint(
            host=settings.sip_host,
            port=settings.sip_port,
            rtp_ports=settings.rtp_range,
            handler=self.handle_call,
            observer=CallRecords(self.call_log, phone_region=settings.phone_region),
            answer_delay=settings.answer_delay / 1000,
            rtp_timeout=settings.rtp_timeout,
        )
        await self.endpoint.start()
        registering: asyncio.Task[None] | None = None
        if settings.registrar and settings.register_aor:
            host, _, port = settings.registrar.rpartition(":")
            registrar_ip = (await asyncio.get_running_loop().getaddrinfo(host, int(port)))[0][4][0]
            registering = asyncio.ensure_future(
                self.endpoint.keep_registered(
                    (registrar_ip, int(port)),
                    settings.register_aor,
                    username=settings.register_username,
                    password=settings.register_password,
                    expires=settings.register_expires,
                )
            )
        app = create_app(
            session_factory=session_factory, admin_token=token, is_ready=lambda: self.ready,
            flow_registry=self.flows, bot=self.bot, kb_sync=self.kb_sync, hub=hub,
            phone_region=settings.phone_region, recordings_dir=settings.recordings_dir, router=self.router,
        )
        config = uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_level=settings.log_level,
            lifespan="off",
            access_log=settings.log_level == "debug",
        )
        server = _EmbeddedServer(config)
        http = asyncio.ensure_future(server.serve())
        while not server.started and not http.done():
            await asyncio.sleep(0.02)
        if http.done():
            await self._shutdown(server, http)
            raise RuntimeError(f"HTTP server could not start on {settings.http_host}:{settings.http_port}")
        settle_after_startup()
        self.ready = True
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop.set)
        log.info(
            "SIP listening on udp %s:%s, RTP ports %s",
            settings.sip_host,
            self.endpoint.port,
            settings.rtp_ports,
        )
        log.info("HTTP API on http://%s:%s (docs at /docs)", settings.http_host, settings.http_port)
        if generated:
            print(
                f"hotline: generated admin token (set HOTLINE_ADMIN_TOKEN to choose one): {token}", flush=True
            )
        print(
            f"hotline: ready — sip udp {settings.sip_host}:{self.endpoint.port}, "
            f"http {settings.http_host}:{settings.http_port}",
            flush=True,
        )
        await self._stop.wait()
        log.info("shutting down: hanging up %d call(s)", len(self.endpoint.calls))
        watcher.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(watching, 5)
        if registering is not None:
            registering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await registering
        await self._shutdown(server, http)

    async def _shutdown(self, server: uvicorn.Server, http: asyncio.Future[None]) -> None:
        self.ready = False
        if self.endpoint is not None:
            await self.endpoint.close()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(http, 5)
        if self.call_log is not None:
            await asyncio.to_thread(self.call_log.close)
        with contextlib.suppress(Exception):
            await self.synthesizer.close()
        if getattr(self, "kb_sync", None) is not None:
            await self.kb_sync.aclose()
        if getattr(self, "acd", None) is not None:
            await self.acd.aclose()
        if self.relay is not None:
            await self.relay.aclose()
        for task in list(getattr(self, "_background", ())):
            task.cancel()
        if getattr(self, "asr", None) is not None:
            with contextlib.suppress(Exception):
                await self.asr.aclose()

    def _follow_flow(self, session_factory: sessionmaker[Session], name: str, version: int) -> None:
        """Another worker made `name@version` live through the API: so do we (the next call gets it)."""
        try:
            with session_factory() as session:
                row = flow_store.get_version(session, name, version)
                if row is None:
                    log.warning("flow %s@%s was activated elsewhere but is not in the database", name, version)
                    return
                flow_store.register(self.flows, row)
            self.flows.set_live(name, version)
            log.info("flow %s@%s is live (activated on another worker)", name, version)
        except Exception:
            log.exception("could not follow the activation of flow %s@%s", name, version)

    def _keep(self, task: asyncio.Task[object]) -> None:
        """Keep a background task (a callback) referenced until it finishes."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _taps(self, caller: Call, agent: Call, conversation_id: str, *, record: bool = True) -> Taps:
        """What runs on a caller-agent bridge: recording of both sides (unless the flow's whole-call recording
        has it, or the flow records nothing) and live transcription, written to the customer's conversation
        (for a callback, the call in which they asked for it)."""
        return CallTaps.start(caller, agent, recordings=self.recordings if record else None, asr=self.asr,
                              call_log=self.call_log, settings=self.speech_settings,
                              conversation_id=conversation_id)  # fmt: skip

    def _apply_callcenter(self, session_factory: sessionmaker[Session]) -> None:
        if self.settings.callcenter is None:
            return
        config = callcenter_config.load(self.settings.callcenter)
        for name, queue in config.queues.items():
            if queue.music:
                try:
                    self.hold_music.load(queue.music)  # decoded once, here; the callers get the cached copy
                except ValueError as exc:
                    raise callcenter_config.CallCenterConfigError(
                        f"{self.settings.callcenter}: queues.{name}.music: {exc}"
                    ) from None
        with session_factory() as session, session.begin():
            counts = callcenter_config.apply(session, config)
        log.info("call center from %s: %s", self.settings.callcenter, callcenter_config.summary(counts))

    def _load_knowledge(self) -> None:
        """Seed an empty knowledge base (the demo's, unless configured otherwise), then build the index."""
        seed = self.settings.kb_seed
        if seed is not None:
            with self.kb_sync.session_factory() as session, session.begin():
                if not kb_store.entries(session):
                    from bot.knowledge import parse

                    entries = parse(seed.read_text(encoding="utf-8"), str(seed))
                    report = kb_store.import_entries(session, entries, now=utcnow())
                    log.info("knowledge base was empty: imported %s (%s)", seed, report.summary())
        self.kb_sync.load_now()

    def _load_asr(self) -> Engine | None:
        """Load the speech engine once per process (models are big); 'off' leaves calls keys-only."""
        if self.settings.asr_engine == "off":
            return None
        engine = create_asr_engine(self.settings.asr_engine, vosk_model=self.settings.vosk_model)
        log.info("speech recognition: %s (loaded in %.1f s)", engine.name, engine.load_seconds)
        return engine

    def stop(self) -> None:
        self._stop.set()
