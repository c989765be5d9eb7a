"""Local-only tooling: the simulated account, fleet files and the `tagpatch` runner. Never shipped."""
