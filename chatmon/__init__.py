"""chatmon: a self-hosted LLM chatbot with production monitoring."""

__version__ = "0.9.0"
