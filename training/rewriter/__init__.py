"""The EVD-aware T5 query rewriter (EaRW): SFT on DEQR best candidates, then PRO alignment."""
