"""Built-in mock surveys.

``simulate_galaxy_images`` draws HSC-like bulge + disk galaxies with GalSim, as in
the galaxy-flux seed paper (Kim & Lee 2024), into FITS stamps + a CSV catalogue or
an astroreg HDF5 dataset.

``simulate_sdss_stars`` writes mock SDSS DR12 stellar spectra (``spec-*.fits``) from a
physical emulator (Planck continuum, Saha-Boltzmann line strengths, R = 2000) with an
SSPP-like label catalogue, as in the stellar-parameter seed paper 001.
"""

from astroreg.sim._galaxy_catalog import (
    PAPER_COLUMNS,
    REQUIRED_COLUMNS,
    complete_catalog,
    composite_half_light_radius,
    draw_parameters,
)
from astroreg.sim._galaxy_images import FAST_GSPARAMS, render_galaxy, simulate_galaxy_images
from astroreg.sim._star_lines import build_line_list, loglam_grid, synthesize
from astroreg.sim._stars import StarSurvey, draw_stellar_labels, observe_star, simulate_sdss_stars

__all__ = [
    "FAST_GSPARAMS",
    "PAPER_COLUMNS",
    "REQUIRED_COLUMNS",
    "StarSurvey",
    "build_line_list",
    "complete_catalog",
    "composite_half_light_radius",
    "draw_parameters",
    "draw_stellar_labels",
    "loglam_grid",
    "observe_star",
    "render_galaxy",
    "simulate_galaxy_images",
    "simulate_sdss_stars",
    "synthesize",
]
