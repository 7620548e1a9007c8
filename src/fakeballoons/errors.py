"""Errors a user can cause. The CLI turns these into one line on stderr and exit status 2."""


class UserError(Exception):
    """A mistake in what the user asked for: a bad option, config value, path or file."""


class ConfigError(UserError, ValueError):
    """A configuration value is invalid; the message names the field."""
