"""Replay tooling: read a run's recorded events, fold them, archive them, fork a run."""
