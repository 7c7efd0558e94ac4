"""ESP destination adapters: production clients; only the base URL differs in tests."""
