"""memcglang: replay the life of pages against a faithful model of memcg page accounting."""

__version__ = "0.1.0"
