"""hotline: tts."""
