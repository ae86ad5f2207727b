"""Built-in mock surveys.

``simulate_galaxy_images`` draws HSC-like bulge + disk galaxies with GalSim, as in
the galaxy-flux seed paper (Kim & Lee 2024), into FITS stamps + a CSV catalogue or
an astroreg HDF5 dataset.
"""

from astroreg.sim._galaxy_catalog import (
    PAPER_COLUMNS,
    REQUIRED_COLUMNS,
    complete_catalog,
    composite_half_light_radius,
    draw_parameters,
)
from astroreg.sim._galaxy_images import FAST_GSPARAMS, render_galaxy, simulate_galaxy_images

__all__ = [
    "FAST_GSPARAMS",
    "PAPER_COLUMNS",
    "REQUIRED_COLUMNS",
    "complete_catalog",
    "composite_half_light_radius",
    "draw_parameters",
    "render_galaxy",
    "simulate_galaxy_images",
]
