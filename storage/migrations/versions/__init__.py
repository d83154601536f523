"""Migration scripts, oldest first. New ones: ``claimwatch db revision -m "what changed"``."""
