"""Pipelines: orchestration of I/O, the engine and progress, with atomic output."""
