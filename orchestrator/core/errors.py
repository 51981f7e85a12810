"""One base class for every error the CLI reports as a single clear line.

``exit_code`` follows the CLI contract: 2 for invalid input (config, data,
arguments), 1 for scheduler or system failures.
"""

from __future__ import annotations


class OrchError(Exception):
    """Base of all errors orch reports to the user without a traceback."""

    exit_code = 1


class InputError(OrchError):
    """Invalid user input: a config, a data file, a job ID, an argument.

    ``where`` names the file (and, for configs, the JSON path of the key) so the
    message alone tells the user what to fix.
    """

    exit_code = 2

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)


class SchedulerError(OrchError):
    """A scheduler command failed; carries the command's stderr."""

    exit_code = 1
