"""workflow: see docs/architecture.md."""
