"""User-facing errors.

`UserError` is for problems the user can fix (a missing file, a bad option, a truncated checkpoint).
The CLI prints its message as one line, with no traceback, and exits non-zero. It subclasses
`ValueError` so library callers can catch it as the ordinary Python error for bad values.
"""


class UserError(ValueError):
    """A problem with the user's input; the message names the problem and the fix."""


def describe_os_error(e: OSError) -> str:
    """A short reason, with the fix, for an OSError met while writing output (full disk, read-only...)."""
    import errno

    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full (free some space or choose another --out)"
    if e.errno == errno.EROFS:
        return "it is on a read-only file system (choose another --out)"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "it is not writable (fix its permissions or choose another --out)"
    return f"{e.strerror or e} (choose another --out)"
