"""hotline: callcenter_api."""
