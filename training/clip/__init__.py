"""CLIP training on open_clip: from scratch (evd-tiny) or fine-tuning, resumable, with a caption hook."""
