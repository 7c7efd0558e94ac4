"""Errors a user fixes by changing configuration or input, not by retrying.

Schedulers fail such a task at once (no retries); the CLI prints the message without a
traceback.
"""

from __future__ import annotations


class ConfigurationError(Exception):
    """Something only the user can fix: a bad parameter, a missing key, raw data that does
    not fit the raw contract, nothing landed yet."""


class NothingLanded(ConfigurationError):
    """A run on landed data found no raw tables to build on."""
