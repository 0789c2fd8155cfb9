"""Orchestration in three rooms: suite (what was asked), engine (how it runs), report (what it concludes); CLI on top."""
