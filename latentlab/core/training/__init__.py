"""Training: the loop as a generator of small snapshots, and what decides whether a run can start.

loop          train(): the loop, divergence roll-back, the live scatter's snapshots
budget        memory estimates on the meta device: a run that cannot fit is refused first
live_budget   how many points the live scatter re-encodes while training
device        which torch device to use
sweep         β sweeps: one model per β, rate against distortion
"""
