"""Chapter 8: PyTorch in production — Flask + gunicorn, ONNX Runtime, TorchScript in C++, Redis serving, load tests."""
