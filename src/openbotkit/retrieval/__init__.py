"""Retrieval: embedders, the search index (dense + lexical), fusion and meta filters."""
