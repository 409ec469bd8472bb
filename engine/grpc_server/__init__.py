"""The gRPC transport of the engine: servicers (protobuf <-> engine calls), server, interceptors, TLS and tokens."""
