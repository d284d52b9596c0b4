from ..core.errors import InputError


class InputFileError(InputError):
    """A file the user gave cannot be read as what it should be (one clear line).

    An ``InputError`` (so a ``UserError`` and a ``ValueError``)."""
