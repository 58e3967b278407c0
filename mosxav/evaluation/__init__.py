"""Evaluation: per-pair metrics and their aggregation, the video J&F protocol, scoring a folder of
predictions, and uncertainty over test sequences."""
