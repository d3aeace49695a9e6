"""Drawing helpers shared by the panels and tabs; they hold no state of the session.

point_cloud   many points drawn fast with their density visible
density_cloud   millions of points drawn from their density pyramid each frame
palette, prior_circles   point colours and the colour bar; the prior's circles
images        numpy images to pixmaps, the hover card
latent_picking   the latent plot's mouse gestures and the selection layer
manifold      decoded images on a grid behind the points
lazy          redraw a hidden tab only when it is shown
status        the error banner, the status line, run and job progress with Stop
plot_export   a plot written as PNG or SVG
small_screens   rows that wrap, bodies that scroll, axis labels never clipped: panels that fit small screens
"""
