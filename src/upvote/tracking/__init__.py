"""Experiment tracking with MLflow: what `upvote train`, `upvote embed train` and `upvote tune`
did, kept as MLflow runs, and the model registry mirrored into MLflow's.

The bundle folder (``model/registry.py``) stays the source of truth for what is served; MLflow
records and mirrors it, so the service never imports MLflow and a missing tracking store never
stops training. ``records.py`` says what a run is made of and where runs go; ``client.py`` is
the command's side, which starts ``store.py``, the MLflow writer, in its own process (MLflow's
import never competes with training for the interpreter); ``runs.py`` says what each command
logs. ``store.py`` also mirrors registry versions and aliases into MLflow's registry.
"""
