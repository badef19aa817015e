"""Chapter 4: computer vision (hand-made convolution and pooling, a LeNet classifier, LinkNet segmentation)."""
