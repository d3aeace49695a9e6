"""The Qt shell: widgets render the session's state and forward the user's intent to it.

app           QApplication, the start-up splash, --screenshot
main_window   layout, menus, banner, status bar, drag and drop
unsaved       Save / Discard / Cancel before an action drops a trained model or a sweep
window_settings   saved geometry, splitters, form defaults and recent files
meaning/      the Vector, Factors and Outliers tabs and the window comparing two models
views/        the main panels: latent view, decoded view, training form, Open model dialog
tabs/         one module per bottom tab (curves, interpolation, traversals, ...)
widgets/      drawing helpers the panels share: the point cloud, colours, prior circles, images
state/        the Session and its evented parts, the job runner and the functions it runs
"""
