"""Retrieval strategies beyond single-shot dense (one module each): rag.retrieve.RETRIEVERS imports them."""
