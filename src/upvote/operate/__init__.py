"""Operating the model over time: ``upvote retrain`` (pull, train a challenger, compare it with the
champion on stories neither has seen, promote or keep). Above every other layer: it drives data,
model and tracking, and nothing imports it but the command line."""
