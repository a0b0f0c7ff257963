"""User-facing errors.

`UserError` is for problems the user can fix (a missing file, a bad option, a truncated checkpoint).
The CLI prints its message as one line, with no traceback, and exits non-zero. It subclasses
`ValueError` so library callers can catch it as the ordinary Python error for bad values.
"""


class UserError(ValueError):
    """A problem with the user's input; the message names the problem and the fix."""
