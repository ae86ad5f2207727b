"""Named inputs of a recipe: one settings model per kind, and the old single-input shorthand.

A recipe's ``inputs`` maps a name to a kind and that kind's settings::

    inputs:
      image: {kind: images, crop: 143, scale: global_std}
    inputs:
      flux: {kind: spectra, grid: [3.5754, 3.9670, 4000], rest_frame_column: RV_ADOP}
      photometry: {kind: tabular, columns: [u, g, r, i, z], scaling: standard}

Each kind's settings are a :class:`InputSettings` subclass registered here by
:func:`register_input_settings` (the built-in ones below; a new modality plug-in registers
its own through :func:`astroreg.modalities.register_modality`). The old single-input form
(``inputs: {modality: spectra}`` with ``preprocess.spectra: {...}``) is still read: it is
converted in one place, :func:`expand_shorthand` (and :func:`shorthand_key` for
``--set preprocess.spectra.X=...``), into one input named after its kind
(:data:`SHORTHAND_NAMES`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from astroreg.config._base import _Strict

_SETTINGS: dict[str, type[InputSettings]] = {}
SHORTHAND_NAMES = {"images": "image", "spectra": "flux", "tabular": "features"}
"""Name given to the one input of a recipe written in the old single-input form."""
_SHORTHAND_SECTIONS = {"images": "images", "spectra": "spectra", "tabular": "features"}
_SHORTHAND_KEYS = ("modality", "crop", "bands", "columns")


class InputSettings(_Strict):
    """Settings of one named input; each kind subclasses it with its own fields."""

    kind: str


def register_input_settings(kind: str, settings: type[InputSettings]) -> None:
    """Make ``kind`` a valid ``inputs.<name>.kind``, validated by ``settings``.

    Raises
    ------
    ValueError
        If another settings class is already registered for ``kind``.
    """
    old = _SETTINGS.get(kind)
    if old is not None and old is not settings:
        raise ValueError(f"input kind {kind!r} is already registered (settings {old.__name__})")
    _SETTINGS[kind] = settings


def input_kinds() -> list[str]:
    """The registered input kinds."""
    return sorted(_SETTINGS)


def validate_inputs(value: Any) -> dict[str, InputSettings]:
    """``{name: settings}`` from a recipe's ``inputs`` mapping; errors name the input and the key."""
    if not isinstance(value, dict) or not value:
        raise ValueError(
            "inputs must map at least one input name to its settings, e.g. "
            "inputs: {image: {kind: images, crop: 143}}"
        )
    out: dict[str, InputSettings] = {}
    for name, spec in value.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"input name {name!r} must be a plain identifier (letters, digits, _), e.g. flux")
        if isinstance(spec, InputSettings):
            out[name] = spec
            continue
        if not isinstance(spec, dict) or "kind" not in spec:
            raise ValueError(f"inputs.{name} needs a kind, one of {input_kinds()}: e.g. {name}: {{kind: images}}")
        settings = _SETTINGS.get(spec["kind"])
        if settings is None:
            raise ValueError(f"inputs.{name}.kind {spec['kind']!r} is not one of the registered kinds {input_kinds()}")
        try:
            out[name] = settings.model_validate(spec)
        except ValidationError as err:
            e = err.errors()[0]
            loc = ".".join(str(p) for p in e["loc"])
            raise ValueError(f"inputs.{name}{'.' + loc if loc else ''}: {e['msg'].removeprefix('Value error, ')}") from None
    return out


def expand_shorthand(data: Any) -> Any:
    """The recipe mapping with an old single-input ``inputs`` moved to one named input.

    ``inputs: {modality: K, crop/bands/columns: ...}`` plus ``preprocess.images`` (images),
    ``preprocess.spectra`` (spectra) or ``preprocess.features`` (tabular, as ``scaling``)
    becomes ``inputs: {<SHORTHAND_NAMES[K]>: {kind: K, ...}}``. Anything else is returned as is.
    """
    if not isinstance(data, dict):
        return data
    inputs = data.get("inputs")
    pre = data.get("preprocess")
    old_pre = isinstance(pre, dict) and any(k in pre for k in ("images", "spectra", "features"))
    old_inputs = isinstance(inputs, dict) and (not inputs or any(k in inputs for k in _SHORTHAND_KEYS))
    if not old_inputs and not (inputs is None and old_pre):
        if old_pre:
            moved = sorted(k for k in ("images", "spectra", "features") if k in pre)
            raise ValueError(
                f"preprocess.{moved[0]} belongs to a single-input recipe; with named inputs each input's "
                f"preprocessing is set on the input: move it to inputs.<name> (e.g. inputs.flux.grid)"
            )
        return data
    data = dict(data)
    spec = dict(inputs or {})
    kind = spec.pop("modality", "images")
    if kind not in SHORTHAND_NAMES:
        raise ValueError(f"inputs.modality {kind!r} is not one of {sorted(SHORTHAND_NAMES)}")
    settings = {"kind": kind, **{k: v for k, v in spec.items() if v is not None}}
    if isinstance(pre, dict):
        pre = dict(pre)
        sections = {k: pre.pop(k) for k in ("images", "spectra", "features") if k in pre}
        own = sections.pop(_SHORTHAND_SECTIONS[kind], None)
        if kind == "tabular" and own is not None:
            own = {"scaling": own}
        settings.update(own or {})
        data["preprocess"] = pre
    data["inputs"] = {SHORTHAND_NAMES[kind]: settings}
    return data


def shorthand_key(data: dict[str, Any], key: str) -> str:
    """A dotted override key of the old single-input form, as the key of the named input it now is.

    ``preprocess.spectra.grid`` becomes ``inputs.flux.grid`` and ``inputs.crop`` becomes
    ``inputs.image.crop`` when the recipe has exactly one input of that kind; other keys
    are returned unchanged.
    """
    parts = key.split(".")
    inputs = data.get("inputs") or {}
    if parts[0] == "preprocess" and len(parts) >= 2 and parts[1] in ("images", "spectra", "features"):
        kind = {v: k for k, v in _SHORTHAND_SECTIONS.items()}[parts[1]]
        rest = parts[2:] or ["scaling"]
    elif parts[0] == "inputs" and len(parts) == 2 and parts[1] in _SHORTHAND_KEYS[1:] and parts[1] not in inputs:
        kind, rest = None, parts[1:]
    else:
        return key
    names = [n for n, s in inputs.items() if kind is None or _kind_of(s) == kind]
    if len(names) != 1:
        return key
    return ".".join(["inputs", names[0], *rest])


def _kind_of(spec: Any) -> str | None:
    return spec.get("kind") if isinstance(spec, dict) else getattr(spec, "kind", None)


# -- the built-in kinds -------------------------------------------------------------------
class ImagesInput(InputSettings):
    """Images ``(bands, H, W)`` from the dataset's ``/images``, normalised with one scale fitted on training."""

    kind: Literal["images"] = "images"
    crop: int | None = Field(default=None, ge=1, description="centre-crop images to crop x crop pixels")
    bands: list[str] | None = Field(default=None, description="image bands to use, in order (default: all)")
    scale: Literal["none", "global_std", "global_mad"] = "global_std"
    stretch: Literal["none", "asinh"] = "none"
    nonfinite: Literal["error", "zero"] = "error"


class SpectraInput(InputSettings):
    """Spectra from the dataset's ``/spectra``: resampled onto ``grid``, optionally in the rest frame, standardised.

    ``grid`` is ``[loglam_min, loglam_max, n_pixels]`` in ``log10(wavelength / Angstrom)``;
    the default is paper 001's 4000 points over 3.5754-3.9670 (3762-9268 Angstrom).
    ``scaling`` then scales every pixel with statistics of the training split (paper 004's
    min-max scaling of the Gaia XP fluxes: ``resample: false, standardize: false, scaling: minmax``).
    """

    kind: Literal["spectra"] = "spectra"
    grid: Any = Field(
        default=(3.5754, 3.9670, 4000),
        description="the common wavelength grid: [loglam_min, loglam_max, n_pixels], "
        "{scale: log|linear, start, stop, n, unit: Angstrom|nm}, {scale: table, wavelength: [...]}, "
        "a list of such segments, or gaia-xp (paper 004's 80 BP + 106 RP samples, 366-996 nm)",
    )
    bad_pixels: Literal["interpolate", "mask"] = Field(
        default="interpolate", description="spline over bad pixels, or mask them (0 after standardising)"
    )
    rest_frame_column: str | None = Field(
        default=None, description="column with the radial velocity in km/s (e.g. RV_ADOP) or the redshift "
        "(rest_frame_quantity: redshift); None: no shift"
    )
    rest_frame_quantity: Literal["velocity", "redshift"] = Field(
        default="velocity",
        description="what rest_frame_column holds: a radial velocity in km/s (relativistic Doppler) or a redshift z "
        "(lambda_rest = lambda_obs / (1 + z))",
    )
    resample: bool = Field(
        default=True,
        description="resample onto the grid (cubic spline); false: the spectra are stored on the grid already "
        "(checked), only bad pixels and standardising are applied",
    )
    standardize: bool = Field(default=True, description="subtract each spectrum's mean, divide by its std")
    scaling: Literal["none", "minmax", "standard", "robust"] = Field(
        default="none",
        description="per-pixel scaling fitted on the training split, after the per-spectrum steps: none, minmax "
        "((x - min) / (max - min) of each pixel, a constant pixel -> 0; paper 004), standard (mean, std) or robust "
        "(median, inter-quartile range)",
    )
    missing_rv: Literal["redshift", "error"] = Field(
        default="redshift",
        description="objects without a radial velocity: use the pipeline redshift column Z "
        "(v from 1+z by the relativistic Doppler relation), or stop with an error",
    )
    redshift_column: str = Field(default="Z", description="tabular column of the pipeline redshift (SDSS HDU2 Z)")

    @field_validator("grid", mode="before")
    @classmethod
    def _valid_grid(cls, v: Any) -> Any:
        try:
            from astroreg.preprocess._wavelength import NAMED_GRIDS, parse_grid
        except ImportError:  # pragma: no cover - the generic grids arrive with the spectra slice
            return _old_grid(v)
        if isinstance(v, str) and v in NAMED_GRIDS:
            return v  # built when the input is fitted: a named grid may need a survey package (GaiaXPy)
        return canonical_grid(parse_grid(v), v)


def _old_grid(v: Any) -> tuple[float, float, int]:
    lo, hi, n = v
    if not lo < hi or n < 2:
        raise ValueError(
            f"grid must be [loglam_min, loglam_max, n_pixels] with min < max and n_pixels >= 2, got {list(v)}"
        )
    if lo < 2 or hi > 6:
        raise ValueError(
            f"grid ends {lo!r}, {hi!r} look like wavelengths, not log10(wavelength / Angstrom); "
            "optical spectra have loglam 3.5-4.1, e.g. [3.5754, 3.9670, 4000]"
        )
    return (float(lo), float(hi), int(n))


def canonical_grid(grid: Any, given: Any) -> Any:
    """The recipe's grid as it is stored: the old ``(lo, hi, n)`` tuple stays one, others as plain data."""
    if isinstance(given, str):
        return given  # a named grid (gaia-xp) stays its name
    if isinstance(given, (list, tuple)) and len(given) == 3 and not isinstance(given[0], dict):
        lo, hi, n = given
        return (float(lo), float(hi), int(n))
    return grid.to_dict() if hasattr(grid, "to_dict") else given


class TabularInput(InputSettings):
    """Catalogue columns from the dataset's ``/tabular``, scaled with a scaler fitted on training.

    With ``magnitudes`` (AB magnitude columns in wavelength order) the input builds
    photometry features, in this order: the magnitudes (as magnitudes, fluxes in
    nanomaggies or asinh magnitudes; left out with ``keep_magnitudes: false``), the
    colours, the magnitude errors (clipped), the plain ``columns`` (default none when
    ``magnitudes`` is set) and one missing flag a column read (``missing: median``).
    Everything is fitted on the training split; the names are recorded in order as
    ``feature_names`` of the fitted input. Without ``magnitudes`` the input is the
    plain scaled ``columns`` as before.
    """

    kind: Literal["tabular"] = "tabular"
    columns: list[str] | None = Field(
        default=None, description="tabular columns (default: all; with magnitudes: extra plain columns, default none)"
    )
    scaling: Literal["none", "standard", "robust"] = "standard"
    magnitudes: list[str] | None = Field(
        default=None, description="AB magnitude columns in wavelength order, e.g. [MAG_U, MAG_G, MAG_R, MAG_I, MAG_Z]"
    )
    colours: Literal["none", "adjacent"] | list[tuple[str, str]] = Field(
        default="none", description="colours: none, adjacent magnitude pairs (u-g, g-r, ...) or explicit pairs "
        "[[MAG_U, MAG_G], ...] (first minus second, in mag)"
    )
    keep_magnitudes: bool = Field(default=True, description="keep the magnitudes themselves beside the colours")
    magnitudes_as: Literal["magnitude", "flux", "asinh"] = Field(
        default="magnitude", description="the magnitudes as AB magnitudes, fluxes in nanomaggies (astropy), or asinh "
        "magnitudes (Lupton et al. 1999) with softening asinh_softening; colours stay magnitude differences"
    )
    asinh_softening: float = Field(
        default=1.2e-10, gt=0, description="asinh magnitudes' softening b in maggies (SDSS: u 1.4e-10, g 0.9e-10, "
        "r 1.2e-10, i 1.8e-10, z 7.4e-10)"
    )
    errors: dict[str, str] | str | None = Field(
        default=None, description="magnitude error columns: {MAG_U: MAGERR_U, ...} or a pattern with {column} "
        "(the magnitude's column) or {band} (its part after the last _), e.g. MAGERR_{band}; None: no errors"
    )
    error_clip: float | None = Field(default=None, gt=0, description="clip magnitude errors at this value in mag")
    error_clip_quantile: float | None = Field(
        default=None, gt=0, le=1, description="clip each error column at this quantile of its training values"
    )
    missing: Literal["error", "median"] = Field(
        default="error", description="NaN or inf in a column read: stop with an error, or fill with the training "
        "median and add a 0/1 flag feature for every column read"
    )

    @model_validator(mode="after")
    def _photometry(self) -> TabularInput:
        mags = self.magnitudes or []
        if len(set(mags)) != len(mags):
            raise ValueError(f"magnitudes {mags} repeat a column; list each magnitude column once")
        needs = [k for k, on in (("colours", self.colours != "none"), ("errors", self.errors is not None),
                                 ("magnitudes_as", self.magnitudes_as != "magnitude"),
                                 ("keep_magnitudes", not self.keep_magnitudes)) if on]
        if needs and not mags:
            raise ValueError(f"{needs[0]} needs magnitudes: list the magnitude columns in wavelength order, "
                             "e.g. magnitudes: [MAG_U, MAG_G, MAG_R, MAG_I, MAG_Z]")
        if self.colours == "adjacent" and len(mags) < 2:
            raise ValueError(f"colours: adjacent needs at least two magnitudes, got {mags}")
        if isinstance(self.colours, list):
            odd = [list(p) for p in self.colours if p[0] not in mags or p[1] not in mags or p[0] == p[1]]
            if odd:
                raise ValueError(f"colour pairs {odd} are not two different columns of magnitudes {mags}; "
                                 "add them to magnitudes or fix colours")
        if isinstance(self.errors, dict) and sorted(self.errors) != sorted(mags):
            raise ValueError(f"errors maps {sorted(self.errors)} but magnitudes are {mags}; give one error column "
                             "for every magnitude (or a pattern such as MAGERR_{band})")
        if isinstance(self.errors, str) and "{column}" not in self.errors and "{band}" not in self.errors:
            raise ValueError(f"errors pattern {self.errors!r} has neither {{column}} nor {{band}}; e.g. MAGERR_{{band}}")
        clips = self.error_clip is not None or self.error_clip_quantile is not None
        if clips and self.errors is None:
            raise ValueError("error_clip and error_clip_quantile need errors: {MAG_U: MAGERR_U, ...}")
        if self.error_clip is not None and self.error_clip_quantile is not None:
            raise ValueError("set error_clip (mag) or error_clip_quantile (fitted on training), not both")
        if not mags and not self.keep_magnitudes:
            raise ValueError("keep_magnitudes: false needs magnitudes")
        return self

    def error_columns(self) -> list[str]:
        """The error column of each magnitude, in the order of ``magnitudes`` (empty without errors)."""
        if self.errors is None:
            return []
        if isinstance(self.errors, dict):
            return [self.errors[m] for m in self.magnitudes]
        return [self.errors.format(column=m, band=m.rsplit("_", 1)[-1]) for m in self.magnitudes]

    def colour_pairs(self) -> list[tuple[str, str]]:
        """The (bluer, redder) magnitude pairs whose differences are the colours."""
        if self.colours == "none":
            return []
        if self.colours == "adjacent":
            return list(zip(self.magnitudes[:-1], self.magnitudes[1:]))
        return [tuple(p) for p in self.colours]


for _kind, _settings in (("images", ImagesInput), ("spectra", SpectraInput), ("tabular", TabularInput)):
    register_input_settings(_kind, _settings)
