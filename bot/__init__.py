"""hotline: bot."""
