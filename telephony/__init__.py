"""hotline: telephony."""
