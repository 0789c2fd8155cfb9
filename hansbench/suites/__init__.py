"""Built-in suites (TOML files read through importlib.resources)."""
