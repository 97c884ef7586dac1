"""Embeddings as a service: word2vec jobs whose corpus a stranger names by URL or uploads.

A durable queue on PostgreSQL (queue.py, Procrastinate) hands jobs to workers on any machine that
reaches the database; our records of them (store.py) say state and progress. A corpus is fetched
SSRF-safely and turned into one UTF-8 text file (fetch.py, extract.py) before any training runs,
so a hostile URL or archive fails its job with a clear message instead of reaching internal
addresses or filling the worker's disk. `upvote jobs` (cli.py) is the command line.
"""
