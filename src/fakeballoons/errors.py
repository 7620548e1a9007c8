"""Errors a user can cause. The CLI turns these into one line on stderr and exit status 2."""

from __future__ import annotations

import os


class UserError(Exception):
    """A mistake in what the user asked for: a bad option, config value, path or file."""


class ConfigError(UserError, ValueError):
    """A configuration value is invalid.

    Attributes:
        field: the dotted path of the field (``classes[0].hue_std``, ``train.lr``), "" for the
            whole configuration, None where no field is to blame (the text is not JSON at all).
            Enclosing configurations prefix it (:meth:`under`), and the CLI turns a field that one
            of its flags sets into that flag's name.
        problem: what is wrong with it, e.g. ``must be >= 0, got -2.0``.
        unknown: the field is not a known key (the message then says so).
    """

    def __init__(self, field: str | None, problem: str, *, unknown: bool = False):
        self.field, self.problem, self.unknown = field, problem, unknown
        if field is None:
            text = problem
        elif unknown:
            text = f"config has unknown key '{field}' ({problem})"
        else:
            text = f"config field '{field or 'config'}': {problem}"
        super().__init__(text)

    def under(self, prefix: str) -> ConfigError:
        """The same error for the field as seen from a configuration that holds it at ``prefix``."""
        if not prefix or self.field is None:
            return self
        field = prefix if not self.field else (f"{prefix}{self.field}" if self.field.startswith("[")
                                                else f"{prefix}.{self.field}")
        return ConfigError(field, self.problem, unknown=self.unknown)


class Stopped(Exception):
    """A stop signal (SIGTERM, SIGINT) arrived; the run wrote a checkpoint to resume from and stopped.
    The CLI says so in one line and exits with 128 + the signal's number."""

    def __init__(self, signum: int, where: str):
        import signal

        self.signum, self.where = int(signum), where
        super().__init__(f"stopped by {signal.Signals(signum).name} {where}")


def env_int(name: str, default: int, environ=os.environ) -> int:
    """A whole number from the environment variable ``name`` (torchrun's WORLD_SIZE, RANK,
    LOCAL_WORLD_SIZE...), ``default`` where it is unset; anything else is a UserError naming it."""
    text = environ.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"the environment variable {name}={text!r} is not a whole number; unset it, or start the "
                        "command with torchrun, which sets it") from None
    if value < 0 or value > 1_000_000:
        raise UserError(f"the environment variable {name}={value} is out of range; unset it, or start with torchrun")
    return value
