"""Decoding and encoding only; no model knowledge here."""
