"""The errors a user can fix.

Every error that a setting, a file, an argument or a missing optional package causes
derives from UserError; the scripts print its message in one line and exit with status 1
(``vid2vid.cli.command``). Any other exception is a bug and keeps its traceback. Messages
of errors described in docs/troubleshooting.md end with the page's anchor (``see``).
"""

from __future__ import annotations

TROUBLESHOOTING = "docs/troubleshooting.md"


class UserError(ValueError):
    """A problem the user can fix; the message says what and where."""


def see(anchor: str) -> str:
    """The pointer to a section of the troubleshooting page, for the end of a message."""
    return f" (see {TROUBLESHOOTING}#{anchor})"
