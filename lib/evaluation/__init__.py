"""Evaluation: metrics, boundary and fusion analysis, figures."""
