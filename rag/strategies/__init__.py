"""Retrieval strategies beyond single-shot dense (one module each); importing registers them."""
