"""Training: data sampling, degradations, metrics, and the SR and GAN training loops."""
