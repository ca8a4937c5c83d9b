"""`hotline asr ...`: check speech recognition on your own recordings, without a call.

Supervisors record how callers say their menu options and see what the engine hears, with the confidence a
flow would compare against its threshold. The audio goes through the same path as a call's: mixed to mono
and resampled to 8 kHz first.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import wave
from pathlib import Path

import click
import numpy as np

from asr.audio import wav_to_8k
from asr.recognizer import AsrError, Engine, ModelError, create_engine


@click.group(help="Speech recognition tools.")
def asr() -> None:
    pass


@asr.command(help="Recognize a WAV file and print JSON: text, confidence, words, engine, timing.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--grammar", help='Phrases separated by "|" (e.g. "billing|technical support"); default: free speech.')
@click.option(
    "--engine",
    type=click.Choice(["auto", "vosk", "pocketsphinx"]),
    default="auto",
    show_default=True,
    help="auto = vosk when --vosk-model is given, else pocketsphinx.",
)
@click.option(
    "--vosk-model",
    type=click.Path(path_type=Path),
    envvar="HOTLINE_VOSK_MODEL",
    help="Directory of an unzipped Vosk model (env HOTLINE_VOSK_MODEL).",
)
def transcribe(file: Path, grammar: str | None, engine: str, vosk_model: Path | None) -> None:
    try:
        audio = wav_to_8k(file)
    except (wave.Error, ValueError, EOFError) as exc:
        raise click.UsageError(f"{file}: not a readable PCM WAV file ({exc})") from None
    phrases = [p.strip() for p in grammar.split("|") if p.strip()] if grammar is not None else None
    if phrases is not None and not phrases:
        raise click.UsageError("--grammar has no phrases")
    try:
        recognizer = create_engine(engine, vosk_model=vosk_model, workers=1)
    except (ModelError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    except AsrError as exc:
        click.echo(f"hotline: {exc}", err=True)
        sys.exit(1)
    out = asyncio.run(_run(recognizer, audio, phrases))
    click.echo(json.dumps(out, ensure_ascii=False, indent=2))


async def _run(engine: Engine, audio: np.ndarray, phrases: list[str] | None) -> dict[str, object]:
    seconds = len(audio) / 8000
    try:
        start = time.perf_counter()
        result = await engine.transcribe(audio, 8000, phrases)
        elapsed = time.perf_counter() - start
    finally:
        await engine.aclose()
    out = result.to_json()
    out["seconds"] = round(seconds, 3)
    out["real_time_factor"] = round(elapsed / seconds, 4) if seconds else 0.0
    out["load_seconds"] = round(engine.load_seconds, 3)
    return out
