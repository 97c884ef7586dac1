"""Watching the model in production: live accuracy against final scores, and drift."""
