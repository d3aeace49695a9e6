"""The bottom tabs (`toolTabs`), one module each; they never import each other.

curves, interpolation, traversals, collapse, posterior, aggregate, sweep, selection, spatial
"""
