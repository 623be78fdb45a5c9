"""What generated tests import: `ModelTests` (model × hardware tests driven by the harness)."""
