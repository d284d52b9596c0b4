class InputFileError(ValueError):
    """A file the user gave cannot be read as what it should be (one clear line)."""
