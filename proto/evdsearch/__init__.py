"""evdsearch protocol buffers."""
