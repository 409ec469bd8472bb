"""The Gradio demo: a search page over an in-process engine or a running `evdsearch serve` (gradio only in app.py)."""
