"""inversion: see docs/architecture.md."""
