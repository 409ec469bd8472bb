"""Indexer: writes the FAISS image index and the LMDB knowledge base."""
