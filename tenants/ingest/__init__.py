"""Ingest logic the web app, the CLI and the worker call: reading, checking and loading
files and pushes, data sources, runs, the Matomo connector, the feedback widget.
"""
