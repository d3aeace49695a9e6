"""The Qt-free core of latentlab: usable headless, from the command line, the Python API and tests.

Rooms, each importing only from those below it (import-linter contracts in pyproject.toml):

training/   the training loop (one process or DDP under torchrun), memory budgets, devices, β sweeps
meaning/    attribute vectors, disentanglement scores, outliers      tables/  latent tables, CSV to Parquet
files/      checkpoints, weights files, model SPECs and other libraries' folders, previews, exports, settings
inference/  objectives, the exact posterior, analysis, aggregate q(z), projections, selections, density
data/       dataset SPECs and one loader per format        models/  the LatentModel protocol and the VAEs

Beside them, used by every room: errors (the exceptions with one-sentence messages), text (how
text from files and users is shortened and quoted), memory (what still fits in RAM) and cpu_load
(how many cores other processes keep busy).
"""
