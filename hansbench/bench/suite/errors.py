"""The suite loader's error, in a module of its own so that every part of the loader can raise it."""


class SuiteError(ValueError):
    """A suite that cannot run; the message names the key path and the fix."""
