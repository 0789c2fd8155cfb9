"""The engine: planning, node types, keys, cache, results store, executors, runner, timing."""
