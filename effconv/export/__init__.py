"""Export trained or fresh models to ONNX and TensorRT."""
