"""Chapter 6: generative networks (PixelCNN, WaveNet, GAN, CycleGAN)."""
