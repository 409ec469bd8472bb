"""ONNX exports: the T5 rewriter (encoder + decoder step) and the CLIP text tower, with agreement checks."""
