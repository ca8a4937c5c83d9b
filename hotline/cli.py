"""`hotline` command line. `serve` is the contract other tools and tests rely on."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from hotline.cli_flow import flow
from hotline.settings import SettingsError, load_settings


@click.group(help="hotline: self-hosted voice IVR and call-center integration.")
@click.version_option(package_name="hotline")
def main() -> None:
    pass


@main.command(help="Answer calls on SIP and serve the HTTP API, in one process.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="YAML file of settings (keys as the long options, e.g. sip_port: 5070).",
)
@click.option("--sip-host", help="Address for SIP over UDP [0.0.0.0].")
@click.option("--sip-port", type=int, help="SIP port [5060].")
@click.option("--http-host", help="Address for the HTTP API [127.0.0.1].")
@click.option("--http-port", type=int, help="HTTP port [8080].")
@click.option("--db", help="SQLAlchemy URL of the database [sqlite:///./hotline.db].")
@click.option("--flows", type=click.Path(path_type=Path), help="Directory of flows [the shipped demo flow].")
@click.option("--rtp-ports", help="RTP port range [20000-30999].")
@click.option("--answer-delay", type=int, help="Ring (180) this many ms before answering [0].")
@click.option("--admin-token", help="Bearer token for /api/v1 (env HOTLINE_ADMIN_TOKEN); generated if unset.")
@click.option("--rtp-timeout", type=float, help="Hang up after this many seconds without RTP [30].")
@click.option("--tts-engine", type=click.Choice(["pyttsx3", "espeak-ng", "flite"]), help="TTS engine [pyttsx3].")
@click.option("--tts-cache-dir", type=click.Path(path_type=Path), help="Keep synthesized prompts on disk here.")
@click.option("--registrar", help="host:port of an upstream registrar/PBX to register with.")
@click.option("--register-aor", help="Address-of-record to register, e.g. sip:hotline@pbx.example.com.")
@click.option("--register-username", help="Digest user name for the registrar.")
@click.option("--register-password", help="Digest password (prefer env HOTLINE_REGISTER_PASSWORD).")
@click.option("--default-flow", help="Flow for calls whose dialed user names no flow [demo].")
@click.option("--recordings-dir", type=click.Path(path_type=Path), help="Where recordings go [./recordings].")
@click.option(
    "--recordings-retention-days", type=float,
    help="Delete recordings older than this many days (at start-up and every 6 h) [unset: keep them].",
)  # fmt: skip
@click.option(
    "--asr-engine",
    type=click.Choice(["auto", "vosk", "pocketsphinx", "off"]),
    help="Speech recognition engine [auto: Vosk when --vosk-model is set, else pocketsphinx].",
)
@click.option(
    "--vosk-model",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="Directory of a Vosk model (e.g. vosk-model-small-en-us-0.15).",
)
@click.option(
    "--callcenter", type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="YAML of queues, agents and users to create/update at start-up (docs/agents.md).",
)
@click.option("--worker-id", help="This worker's name in the shared routing state [host-pid].")
@click.option("--phone-region", help="ISO country for national phone numbers, e.g. GB [unset: +international only].")
@click.option("--kb-seed", help="Knowledge file imported if the knowledge base is empty ['none': skip; default: demo].")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="[info]")
def serve(config_file: Path | None, **options: object) -> None:
    try:
        settings = load_settings(config_file, options)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from callcenter_api.routing.config import CallCenterConfigError
    from hotline.service import Service

    try:
        asyncio.run(Service(settings).run())
    except OSError as exc:
        click.echo(f"hotline: cannot start: {exc}", err=True)
        sys.exit(1)
    except CallCenterConfigError as exc:  # the call-center file: its path and what to fix, no traceback
        click.echo(f"hotline: cannot start: {exc}", err=True)
        sys.exit(2)


main.add_command(flow)

from hotline.cli_asr import asr  # noqa: E402

main.add_command(asr)

from hotline.cli_kb import kb  # noqa: E402

main.add_command(kb)

from hotline.cli_recordings import recordings  # noqa: E402

main.add_command(recordings)

from hotline.cli_users import users  # noqa: E402

main.add_command(users)


if __name__ == "__main__":
    main()
