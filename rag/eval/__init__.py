"""Evaluation harness: MuSiQue-style datasets, throwaway knowledge bases, metrics."""
