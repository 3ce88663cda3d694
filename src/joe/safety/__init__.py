"""Safety: audit log, secret redaction, pre-trade checks, trading state, kill switch and breakers."""
