"""A tiny randomly initialised diffusers AutoencoderKL for 8×8 images (K = 2×4×4), seeded."""


def tiny_autoencoder(channels=1):
    import diffusers
    import torch

    torch.manual_seed(0)
    return diffusers.AutoencoderKL(
        in_channels=channels, out_channels=channels, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=2,
        norm_num_groups=4, sample_size=8, layers_per_block=1)
