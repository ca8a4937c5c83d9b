"""hotline: telephony/sip."""
