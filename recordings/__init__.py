"""hotline: recordings."""
