"""Orchestration: suite config, cache, results store, runner, timing, leaderboard, CLI (imports the rest; nothing imports it)."""
