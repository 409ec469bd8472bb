"""The Gradio demo: a search page over a running `evdsearch serve`, or one it starts (gradio only in app.py)."""
