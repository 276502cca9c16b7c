"""The write side: load files, segment them into chunks, embed and store them."""

from ingest.pipeline import Ingestor

__all__ = ["Ingestor"]
