"""Text encoding for training that only pays for the tokens a batch uses (shared with the engine).

The implementation lives in `evdsearch.true_length`, below training and the engine both.
"""

from __future__ import annotations

from evdsearch.true_length import can_trim, encode_text_trimmed

__all__ = ["can_trim", "encode_text_trimmed"]
