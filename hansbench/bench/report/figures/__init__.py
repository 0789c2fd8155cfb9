"""The figures the leaderboard shows."""
