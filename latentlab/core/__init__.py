"""The Qt-free core of latentlab: model, objectives, data, training, checkpoints, analysis."""
