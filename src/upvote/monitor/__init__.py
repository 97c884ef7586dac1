"""Watching a model in production: ``upvote monitor`` (drift of its inputs and predictions)."""
