"""File names that producers (training, indexer) and consumers (engine) of an artefact agree on.

Kept in the core so neither side imports the other just to learn a file name.
"""

from __future__ import annotations

# CLIP text tower exported to ONNX (`evdsearch train export-onnx --clip CKPT`), read by the engine.
CLIP_ONNX_DIR = "onnx"  # the export's default place inside a CLIP checkpoint folder
CLIP_TEXT_FILE = "clip_text.onnx"  # the graph
CLIP_TEXT_INT8_FILE = "clip_text.int8.onnx"  # the same graph with int8 weights (onnxruntime dynamic quantisation)
CLIP_TEXT_META = "clip_text.json"  # {"clip": identity, "context_length", "dynamic_length", "int8", "opset"}

# Seq2seq rewriter folder (`evdsearch train rewriter …`) and its ONNX export.
REWRITER_META = "evdsearch_rewriter.json"  # training record saved beside the transformers files
REWRITER_WEIGHTS = "model.safetensors"  # the torch weights an export was made from (checked for staleness)
REWRITER_ONNX_DIR = "onnx"  # sub-folder of the rewriter folder
REWRITER_ENCODER_FILE = "encoder.onnx"
REWRITER_DECODER_FILE = "decoder.onnx"
REWRITER_ONNX_META = "export.json"
REWRITER_CLIP_PIN = "clip_pin.json"  # a shipped rewriter: the one CLIP it was trained for (fingerprint), its KB, how to remake it
REWRITER_ONNX_FORMAT = "evdsearch-rewriter-onnx"
REWRITER_ONNX_FORMAT_VERSION = 2  # 2 adds the cached decoder; a version 1 export still runs (uncached)
REWRITER_ONNX_FORMAT_VERSIONS = (1, 2)  # export versions the runner reads
REWRITER_CROSS_KV_FILE = "encoder_kv.onnx"  # encoder + every decoder layer's cross-attention keys/values
REWRITER_DECODER_PAST_FILE = "decoder_past.onnx"  # decoder over new tokens given the earlier tokens' keys/values
