"""GPU kernels of the encoders (Triton), each with a plain-torch twin for the CPU and tests."""
