"""Visible assignment tests: copied into every student version as ``tests/`` (see ../__init__.py)."""
