"""The paper's baselines, one algorithm per file. Registered as entry points in pyproject.toml."""
