"""Seeded demo data generator."""

from segwise.generate.generator import GenerateResult, generate

__all__ = ["GenerateResult", "generate"]
