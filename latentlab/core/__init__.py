"""The Qt-free core of latentlab: usable headless, from the command line, the Python API and tests.

Rooms, each importing only from those below it (import-linter contracts in pyproject.toml):

training/   the training loop, memory budgets, devices, β sweeps
files/      checkpoints, weights files, model SPECs, previews, latent tables, exports, settings
inference/  objectives, the exact posterior, analysis, aggregate q(z), projections, selections
data/       dataset SPECs and one loader per format        models/  the LatentModel protocol and the VAEs

Beside them, used by every room: errors (the exceptions with one-sentence messages), text (how
text from files and users is shortened and quoted) and memory (what still fits in RAM).
"""
