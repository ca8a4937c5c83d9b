"""hotline: hotline."""
