"""Rendering only: HTML and plots built from results the core computed."""
