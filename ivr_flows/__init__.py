"""hotline: ivr_flows."""
