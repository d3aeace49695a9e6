"""Training: the loop as a generator of small snapshots, and what decides whether a run can start.

sharded       train(): the way in; data streamed from disk or a run under torchrun train here (DDP)
loop          the in-memory loop of one process, divergence roll-back, the live scatter's snapshots
mlp_step      latentlab's MLP VAE's step with its gradient written out (no autograd), to float32 rounding
adam          Adam through torch's fused kernel where the build has one
distributed   one rank of a torchrun job: backend, device, process group, stop signals
budget        memory estimates on the meta device: a run that cannot fit is refused first
live_budget   how many points the live scatter re-encodes while training
device        which torch device to use
sweep         β sweeps: one model per β, rate against distortion
"""
