"""Models in memory: the protocol every view and core function talks to, and the models that speak it.

adapters      LatentModel (the protocol; subclass it for a model latentlab cannot wrap by itself),
              TorchVAE (a user's nn.Module), likelihoods, validate (the one check on a batch)
user_outputs  reading what a user's model returns (checked values) and the sentence for what it raises
vae           latentlab's own VAE and build_model
config        ModelConfig and TrainConfig: plain data that travels inside checkpoints
diffusers_vae diffusers' AutoencoderKL as a LatentModel
"""
