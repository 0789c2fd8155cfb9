"""The suite: from TOML and CLI overrides to one validated, frozen run configuration."""
