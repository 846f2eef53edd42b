"""Alerts: a message to a chat webhook for every failed run, and freshness checks on the daily assets."""
