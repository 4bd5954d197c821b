"""Texture synthesis without a network: periodic procedural noise, and the measures textures are judged by."""
