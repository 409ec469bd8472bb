"""Engine: answers text/image queries with EVD rewriting and fused scores; gRPC server."""
