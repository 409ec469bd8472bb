"""Entity visual descriptions (EVDs) from an LLM: generate, clean, label against ground truth."""
