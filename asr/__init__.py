"""hotline's ears: voice activity detection, endpointing and offline speech recognition (Vosk, pocketsphinx).

Engines are imported lazily by `create_engine`, so importing `asr` costs neither libvosk nor pocketsphinx.
"""

from asr.recognizer import AsrBusy, AsrError, Engine, ModelError, RecognizerSession, Result, Word, create_engine
from asr.vad import Endpointer, EndpointEvent, NoInput, SpeechEnded, SpeechStarted

__all__ = [
    "AsrBusy",
    "AsrError",
    "EndpointEvent",
    "Endpointer",
    "Engine",
    "ModelError",
    "NoInput",
    "RecognizerSession",
    "Result",
    "SpeechEnded",
    "SpeechStarted",
    "Word",
    "create_engine",
]
