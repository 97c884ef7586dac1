"""Watching the model in production (`upvote monitor`): live accuracy against the scores stories
finally got, and drift of the inputs and predictions from the training data."""
