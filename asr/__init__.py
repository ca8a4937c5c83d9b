"""hotline: asr."""
