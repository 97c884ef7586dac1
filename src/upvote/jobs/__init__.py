"""Embeddings as a service: jobs whose corpus a stranger names by URL.

The corpus is fetched SSRF-safely and turned into one UTF-8 text file here (fetch.py, extract.py)
before any training runs, so a hostile URL or archive fails the job with a clear message instead
of reaching internal addresses or filling the worker's disk.
"""
