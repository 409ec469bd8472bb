"""`evdsearch serve`: the verb and its flag groups, turned into an EngineConfig and a running gRPC server."""
