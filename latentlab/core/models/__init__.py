"""Models in memory: the protocol every view and core function talks to, and the models that speak it.

adapters      LatentModel (the protocol; subclass it for a model latentlab cannot wrap by itself),
              TorchVAE (a user's nn.Module), likelihoods, validate (the one check on a batch)
user_outputs  reading what a user's model returns (checked values) and the sentence for what it raises
vae           latentlab's own VAE and build_model
config        ModelConfig and TrainConfig: plain data that travels inside checkpoints
diffusers_vae diffusers' AutoencoderKL (and AutoencoderTiny, deterministic) as a LatentModel
pythae_vae    pythae's models (pythae:DIR folders and objects) as LatentModels
foreign       as_model: the right wrapper for a model object from any library
priors        p(z): N(0, I), or the prior a model declares; KL in closed form or by Monte Carlo
likelihoods   decoder likelihoods and the check that one fits the decoder's outputs
spec_forms    the model SPEC forms as help text (no torch, so that --help is quick)
"""
