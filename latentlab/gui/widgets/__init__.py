"""Drawing helpers shared by the panels and tabs; they hold no state of the session.

point_cloud   many points drawn fast with their density visible
density_cloud   millions of points drawn from their density pyramid each frame
palette, prior_circles   point colours and the colour bar; the prior's circles
images        numpy images to pixmaps, the hover card
latent_picking   the latent plot's mouse gestures and the selection layer
manifold      decoded images on a grid behind the points
lazy          redraw a hidden tab only when it is shown
status        the error banner and the job progress with Stop
"""
