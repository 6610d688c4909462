"""Jinja templates: model cards, issue and comment texts (loaded as package data)."""
