"""Defaults of the galaxy-image mock that the command line shows without importing GalSim."""

STAMP_SIZE = 143
"""Stamp side in pixels, as the seed paper's cropped images."""
GAIN = 3.0
"""Default gain, e-/ADU (HSC CCDs: about 3)."""
SKY_LEVEL = 15.0
"""Default subtracted sky, ADU / pixel: sky noise sqrt(15 / 3) = 2.24 ADU per pixel."""
