"""Experiment tracking with MLflow: what `upvote train`, `upvote embed train` and `upvote tune`
did, kept as MLflow runs, and the model registry mirrored into MLflow's.

The bundle folder (``model/registry.py``) stays the source of truth for what is served; MLflow
records and mirrors it, so the service never imports MLflow and a missing tracking store never
stops training. ``client.py`` connects (in the background) and writes runs; ``runs.py`` says
what each command logs; ``mirror.py`` copies registry versions and aliases into MLflow.
"""
