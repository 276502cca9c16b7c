"""Adapters that make hoprag retrieval a native component of other frameworks.

Each module imports its framework lazily and names the extra to install when it
is missing: ``rag.integrations.langchain`` (extra ``langchain``) and
``rag.integrations.llama_index`` (extra ``llamaindex``).
"""
