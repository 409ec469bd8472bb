"""Client side of the gRPC API: the `evdsearch search` verb and its terminal rendering (no server code)."""
