"""Export segments to destinations (files now; ESP adapters plug into the same interface)."""
