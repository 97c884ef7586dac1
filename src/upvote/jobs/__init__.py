"""Embeddings as a service, the back end: a durable queue of word2vec jobs (queue.py) on
PostgreSQL, our records of them (store.py) and the `upvote jobs` command line (cli.py). Workers
run on any machine that reaches the database."""
