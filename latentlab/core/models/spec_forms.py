"""The forms a model SPEC takes, as help text: free of torch, so that `latentlab --help` is quick."""

from __future__ import annotations


def describe_model_specs() -> str:
    return "\n".join([
        "  PATH.safetensors       a latentlab checkpoint (the default: the bundled digits model)",
        "  PATH.py:NAME           your VAE: latentlab imports PATH.py and calls NAME() (this runs your code)",
        "  package.module:NAME    the same for an importable module",
        "  diffusers:DIR          a folder saved by diffusers' AutoencoderKL.save_pretrained (safetensors)",
        "  pythae:DIR             a pythae final_model/ folder (pythae's loader unpickles it: this runs code)",
        "Your model needs encode(x) -> (mu, logvar), a Normal, or an object with .mean and .logvar/.std/.var,",
        "and decode(z) -> images (B, C, H, W), flat (B, C*H*W) or an object with .sample; decoder outputs",
        "are Bernoulli logits unless the model's `likelihood` attribute or --likelihood says otherwise.",
    ])
