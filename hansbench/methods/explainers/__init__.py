"""Built-ins register on import."""
