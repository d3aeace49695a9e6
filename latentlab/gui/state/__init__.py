"""The window's state: no widget here. Views read these parts and call their methods.

session       Session: owns the parts, actions that span several of them, model loading
parts         ModelData, Cursor, PointSelection (the rows picked on the latent view), InterpolationPath
              (the path's endpoints) and the mode enums
latent_points LatentPoints: the encoded means, their projection, statistics and overlays
analyses      maps, per-point statistics, selections, exports, the aggregate q(z)
model_saver   ModelSaver: the model's saves, written on a worker one at a time
runs          RunController: training requests, runs, sweeps, publishing snapshots
attribute_vectors   the attribute vector, its groups, its plane, analogies decoded along it
comparison    a second model on the same data: its means, both models' numbers, one image decoded by both
jobs          JobRunner: background jobs, newest result per key, progress and Stop
work          the functions jobs run on worker threads (numpy in, numpy out)
table_source  a latent table opened as the window's points, its rows' images read on demand
point_density millions of shown points aggregated into a density pyramid off the GUI thread
"""
