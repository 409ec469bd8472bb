"""Description sets for zero-shot classification and the KB: EX2 (RL-aligned LLM), IFT (influence), FuDD."""
