"""Built-in mock surveys.

``simulate_galaxy_images`` draws HSC-like bulge + disk galaxies with GalSim, as in
the galaxy-flux seed paper (Kim & Lee 2024), into FITS stamps + a CSV catalogue or
an astroreg HDF5 dataset.

``simulate_sdss_stars`` writes mock SDSS DR12 stellar spectra (``spec-*.fits``) from a
physical emulator (Planck continuum, Saha-Boltzmann line strengths, R = 2000) with an
SSPP-like label catalogue, as in the stellar-parameter seed paper 001.

``simulate_galaxy_photometry`` draws a flux-limited ugriz catalogue with true stellar
mass, SFR, size and star-formation-rate surface density, as for seed paper 000, written by
``write_photometry_catalog`` (Parquet) or ``write_photometry_dataset`` (astroreg HDF5).

``simulate_gaiaxp_galaxies`` draws mock Gaia BP/RP spectra of galaxies with known redshift
on paper 004's 186 kept samples (templates, emission lines, dust, Gaia XP resolution and
photon noise), written by ``write_gaiaxp_dataset`` as prepared spectra (seed paper 004).

Members are imported on first use, so that the command line starts without GalSim.
"""

from astroreg._lazy import lazy_members

_WHERE = {
    "FAST_GSPARAMS": "astroreg.sim._galaxy_images",
    "PHOTOMETRY_BANDS": "astroreg.sim._galaxy_photometry",
    "SDSS_DEPTH_5SIGMA": "astroreg.sim._galaxy_photometry",
    "PAPER_COLUMNS": "astroreg.sim._galaxy_catalog",
    "REQUIRED_COLUMNS": "astroreg.sim._galaxy_catalog",
    "StarSurvey": "astroreg.sim._stars",
    "build_line_list": "astroreg.sim._star_lines",
    "complete_catalog": "astroreg.sim._galaxy_catalog",
    "composite_half_light_radius": "astroreg.sim._galaxy_catalog",
    "draw_parameters": "astroreg.sim._galaxy_catalog",
    "draw_stellar_labels": "astroreg.sim._stars",
    "loglam_grid": "astroreg.sim._star_lines",
    "observe_star": "astroreg.sim._stars",
    "render_galaxy": "astroreg.sim._galaxy_images",
    "sdss_filters": "astroreg.sim._galaxy_photometry",
    "sigma_sfr": "astroreg.sim._galaxy_photometry",
    "simulate_galaxy_photometry": "astroreg.sim._galaxy_photometry",
    "simulate_galaxy_images": "astroreg.sim._galaxy_images",
    "simulate_gaiaxp_galaxies": "astroreg.sim._gaiaxp_galaxies",
    "simulate_sdss_stars": "astroreg.sim._stars",
    "synthesize": "astroreg.sim._star_lines",
    "write_photometry_catalog": "astroreg.sim._galaxy_photometry_output",
    "write_photometry_dataset": "astroreg.sim._galaxy_photometry_output",
    "write_gaiaxp_dataset": "astroreg.sim._gaiaxp_output",
}

__all__, __getattr__, __dir__ = lazy_members(__name__, _WHERE)
