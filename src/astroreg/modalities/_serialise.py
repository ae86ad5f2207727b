"""Fitted preprocessors as plain JSON: reading a run folder never runs code.

A pickle (``joblib``) file is a program: unpickling a doctored one runs whatever it says.
Run folders are shared between people, so astroreg stores the fitted transforms as data
only (format ``astroreg-preprocessor``, version :data:`FORMAT_VERSION`)::

    {"format": "astroreg-preprocessor", "version": 2,
     "preprocessor": {"target_names": ["log_total_flux"], ...,
                      "inputs": {"image": {"__input__": "images",
                                           "fields": {"name": "image", "settings": {"kind": "images", ...},
                                                      "shape": [1, 143, 143], "band_index": null,
                                                      "images": {"__class__": "ImageNormalizer",
                                                                 "params": {"crop": 143, ...},
                                                                 "fitted": {"scale_": ...}}}}}}}

Each named input is stored as its registered kind (:func:`astroreg.modalities.register_modality`),
its settings (validated again by the kind's settings model when read) and its fields. Every transform is named by a class from a fixed allow-list (:data:`_CLASSES`), built from
its constructor parameters, and given its fitted attributes (those ending in ``_``).
scikit-learn scalers are rebuilt the same way: a fresh ``StandardScaler`` or
``RobustScaler`` with its ``mean_``, ``scale_``, ... set. Arrays are stored as their dtype,
shape and values; a float64 written by Python's ``json`` (its shortest round-tripping
``repr``) reads back bit for bit, so predictions after a save and load are identical.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.preprocessing import RobustScaler, StandardScaler

from astroreg.config import InputSettings
from astroreg.modalities._base import Modality, get_modality
from astroreg.preprocess._spectra import (
    GridSegment,
    LogLamResampler,
    SpectrumResampler,
    SpectrumStandardizer,
    WavelengthGrid,
)
from astroreg.preprocess._transforms import FeatureScaler, ImageNormalizer, TargetScaler

FORMAT = "astroreg-preprocessor"
FORMAT_VERSION = 2
FILE_NAME = "preprocessors.json"
"""The fitted preprocessing's file in a run folder."""
OLD_FILE_NAME = "preprocessors.joblib"
"""Where astroreg before format version 1 pickled it; refused, never read."""

# The only classes a preprocessor file may name, with the fitted attributes each must carry.
_CLASSES: dict[str, tuple[type, tuple[str, ...]]] = {
    "ImageNormalizer": (ImageNormalizer, ("scale_",)),
    "FeatureScaler": (FeatureScaler, ("scaler_",)),
    "TargetScaler": (TargetScaler, ("scaler_",)),
    "LogLamResampler": (LogLamResampler, ("grid_",)),
    "SpectrumResampler": (SpectrumResampler, ("wavelength_grid_",)),
    "WavelengthGrid": (WavelengthGrid, ()),
    "GridSegment": (GridSegment, ()),
    "SpectrumStandardizer": (SpectrumStandardizer, ("n_pixels_",)),
    "StandardScaler": (StandardScaler, ("n_features_in_", "mean_", "var_", "scale_")),
    "RobustScaler": (RobustScaler, ("n_features_in_", "center_", "scale_")),
}
# scikit-learn's classes may gain parameters in a newer release (a file then lacks them and
# they take their defaults); astroreg's own must be complete.
_THIRD_PARTY = ("StandardScaler", "RobustScaler")
_MAX_BYTES = 64 * 2**20  # a 4000-pixel spectra preprocessor is ~150 kB
_DTYPES = ("float64", "float32", "int64", "int32", "uint64", "bool")
_ARRAY, _SCALAR, _CLASS, _INPUT = "__ndarray__", "__npscalar__", "__class__", "__input__"
_PICKLE_MAGIC = b"\x80"  # the PROTO opcode that starts every pickle since protocol 2


class _Invalid(Exception):
    """A defect of the file's contents; turned into one ValueError naming the file."""


def old_file_message(path: str | os.PathLike) -> str:
    """Why an old, pickle-based run folder is refused, and what to do."""
    return (
        f"{path} is from an old, pickle-based astroreg run folder; astroreg no longer loads it because "
        f"unpickling a file can run code; train the recipe again (astroreg train <run>/config.yaml) "
        f"to get a run folder with {FILE_NAME}"
    )


def dumps(obj: Any) -> str:
    """The text of a preprocessor file holding ``obj`` (a :class:`RecipePreprocessor`).

    Raises
    ------
    TypeError
        If a field holds something other than plain data, numpy arrays and the
        allow-listed transforms.
    """
    doc = {"format": FORMAT, "version": FORMAT_VERSION, "preprocessor": _encode_fields(obj)}
    return json.dumps(doc, indent=1) + "\n"


def load_json(path: str | os.PathLike, cls: type, check: Callable[[Any], None] | None = None) -> Any:
    """Read a file holding :func:`dumps` into a ``cls`` (a :class:`RecipePreprocessor`).

    Every field is checked against ``cls``'s type hints, then ``check(obj)`` (which raises
    ``ValueError`` or ``TypeError``) looks at how the fields fit together.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is an old pickle, truncated, not JSON, of another format or version,
        names a class outside the allow-list, or lacks or adds a field. Nothing in the file
        is executed: it is parsed as JSON and only allow-listed classes are built from it.
    """
    path = Path(path)
    if path.name == OLD_FILE_NAME:
        raise ValueError(old_file_message(path))
    if path.is_file() and path.stat().st_size > _MAX_BYTES:
        raise ValueError(_bad_file(path, f"{path.stat().st_size} bytes, more than any astroreg preprocessor"))
    raw = path.read_bytes()
    if raw[:1] == _PICKLE_MAGIC:
        raise ValueError(
            f"{path} holds pickle data, not JSON; astroreg never unpickles a run folder's files because that "
            "can run code; train the run again"
        )
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError, absurd nesting
        raise ValueError(_bad_file(path, f"not valid JSON: {_first_line(err)}")) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(_bad_file(path, f"its 'format' is not {FORMAT!r}"))
    if doc.get("version") == 1:  # one unnamed input: read as the one named input it now is
        try:
            doc["preprocessor"] = _from_version_1(doc.get("preprocessor"))
        except (_Invalid, KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(_bad_file(path, f"a version-1 file that cannot be read: {_first_line(err)}")) from None
        doc["version"] = FORMAT_VERSION
    if doc.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} is an astroreg preprocessor file of format version {doc.get('version')!r}; this astroreg "
            f"reads version {FORMAT_VERSION} (named inputs); use the astroreg version that wrote it or train the "
            "run again (astroreg train <run>/config.yaml)"
        )
    try:
        fields = _decode_fields(doc.get("preprocessor"), cls, "preprocessor")
        hints = typing.get_type_hints(cls)
        wrong = [k for k, v in fields.items() if k in hints and not _conforms(v, hints[k])]
        if wrong:
            raise _Invalid(f"fields of the wrong type: {wrong}")
        obj = cls(**fields)
        if check is not None:
            check(obj)
        return obj
    except (_Invalid, TypeError, ValueError, IndexError, RecursionError) as err:
        raise ValueError(_bad_file(path, _first_line(err))) from None


_V1_INPUT_FIELDS = ("modality", "columns", "band_index", "images", "spectra", "standardizer", "rest_frame_column",
                    "missing_rv", "redshift_column", "features", "input_shape")


def _from_version_1(pre: Any) -> dict[str, Any]:
    """A version-1 preprocessor (one unnamed input, its settings spread over the fields) in version 2's form.

    Version 1 (astroreg before named inputs) held ``modality``, ``input_shape`` and the
    fitted transforms of that one input beside the targets. They become one named input
    (``image``, ``flux`` or ``features``, as :func:`astroreg.config._inputs.expand_shorthand`
    names the old single-input recipes), its settings taken from the transforms' own
    parameters. Only the layout changes: the arrays and classes are checked as for
    version 2 when the result is decoded.
    """
    from astroreg.config._inputs import SHORTHAND_NAMES

    if not isinstance(pre, dict) or any(k not in pre for k in _V1_INPUT_FIELDS):
        raise _Invalid("not a version-1 preprocessor")
    kind = pre["modality"]
    if kind not in SHORTHAND_NAMES:
        raise _Invalid(f"modality {kind!r} is not one of {sorted(SHORTHAND_NAMES)}")
    name = SHORTHAND_NAMES[kind]
    fields: dict[str, Any] = {"name": name, "shape": pre["input_shape"]}
    if kind == "images":
        params = pre["images"]["params"]
        fields["settings"] = {"kind": kind, "crop": params["crop"], "scale": params["scale"],
                              "stretch": params["stretch"], "nonfinite": params["nonfinite"]}
        fields.update(band_index=pre["band_index"], images=pre["images"])
    elif kind == "tabular":
        fields["settings"] = {"kind": kind, "columns": list(pre["columns"]),
                              "scaling": pre["features"]["params"]["kind"]}
        fields.update(columns=pre["columns"], features=pre["features"])
    else:
        params = pre["spectra"]["params"]
        fields["settings"] = {"kind": kind, "grid": [params["loglam_min"], params["loglam_max"], params["n_pixels"]],
                              "bad_pixels": params["bad_pixels"], "rest_frame_column": pre["rest_frame_column"],
                              "standardize": pre["standardizer"] is not None, "missing_rv": pre["missing_rv"],
                              "redshift_column": pre["redshift_column"]}
        fields.update(spectra=pre["spectra"], standardizer=pre["standardizer"])
    out = {k: v for k, v in pre.items() if k not in _V1_INPUT_FIELDS}
    out["inputs"] = {name: {_INPUT: kind, "fields": fields}}
    return out


def _conforms(value: Any, hint: Any) -> bool:
    """Whether ``value`` has the type ``hint`` (classes, ``X | None``, ``tuple[X, ...]``; others pass)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, h) for h in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return isinstance(value, tuple) and all(_conforms(v, args[0]) for v in value)
        return isinstance(value, tuple) and len(value) == len(args) and all(map(_conforms, value, args))
    if hint is type(None):
        return value is None
    if hint in (int, float):
        return isinstance(value, (int, float) if hint is float else int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _bad_file(path: Path, detail: str) -> str:
    return f"{path} is truncated or not an astroreg preprocessor file ({detail}); train the run again"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# -- encoding ---------------------------------------------------------------------------
def _encode_fields(obj: Any) -> dict[str, Any]:
    return {f.name: _encode(getattr(obj, f.name), f.name) for f in dataclasses.fields(obj) if f.init}


def _encode(value: Any, where: str) -> Any:
    if isinstance(value, np.generic):  # before float: np.float64 is a float, and keeps its type
        if value.dtype.name not in _DTYPES:
            raise TypeError(f"{where}: cannot store a numpy {value.dtype} in {FILE_NAME}")
        return {_SCALAR: {"dtype": value.dtype.name, "value": value.item()}}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.name not in _DTYPES:
            raise TypeError(f"{where}: cannot store a numpy {value.dtype} array in {FILE_NAME}")
        return {_ARRAY: {"dtype": value.dtype.name, "shape": list(value.shape), "data": value.ravel().tolist()}}
    if isinstance(value, (tuple, list)):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if any(not isinstance(k, str) for k in value):
            raise TypeError(f"{where}: only dicts with str keys can be stored in {FILE_NAME}")
        return {k: _encode(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, Modality):
        if get_modality(value.kind) is not type(value):
            raise TypeError(f"{where}: input kind {value.kind!r} is not registered by {type(value).__name__}")
        return {_INPUT: value.kind, "fields": {
            f.name: (value.settings.model_dump(mode="json") if f.name == "settings"
                     else _encode(getattr(value, f.name), f"{where}.{f.name}"))
            for f in dataclasses.fields(value) if f.init}}
    name = type(value).__name__
    if name in _CLASSES and type(value) is _CLASSES[name][0]:
        return {_CLASS: name, "params": _encode(_params(value), f"{where}.params"),
                "fitted": {k: _encode(v, f"{where}.{k}") for k, v in vars(value).items() if _is_fitted(k)}}
    raise TypeError(
        f"{where}: cannot store a {type(value).__name__} in {FILE_NAME}; allowed classes: {sorted(_CLASSES)}"
    )


def _params(obj: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(obj):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}
    return obj.get_params(deep=False)


def _param_names(cls: type) -> set[str]:
    if dataclasses.is_dataclass(cls):
        return {f.name for f in dataclasses.fields(cls) if f.init}
    return set(cls._get_param_names())


def _is_fitted(name: str) -> bool:
    # scikit-learn's convention: learned state ends in "_"; private names never are
    return name.endswith("_") and not name.startswith("_") and name.isidentifier()


# -- decoding ---------------------------------------------------------------------------
def _decode_fields(data: Any, cls: type, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Invalid(f"{where} is {type(data).__name__}, not an object")
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    missing = [n for n in names if n not in data]
    extra = sorted(set(data) - set(names))
    if missing or extra:
        raise _Invalid(f"{where}: missing fields {missing}, unknown fields {extra}")
    return {n: _decode(data[n], f"{where}.{n}") for n in names}


def _decode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return tuple(_decode(v, f"{where}[{i}]") for i, v in enumerate(value))
    if not isinstance(value, dict):
        raise _Invalid(f"{where}: unexpected {type(value).__name__}")
    if _ARRAY in value:
        return _decode_array(value[_ARRAY], where)
    if _SCALAR in value:
        spec = value[_SCALAR]
        if not isinstance(spec, dict) or spec.get("dtype") not in _DTYPES or "value" not in spec:
            raise _Invalid(f"{where}: a numpy scalar needs a dtype from {list(_DTYPES)} and a value")
        return _decode_array({"dtype": spec["dtype"], "shape": [], "data": [spec["value"]]}, where)[()]
    if _CLASS in value:
        return _decode_object(value, where)
    if _INPUT in value:
        return _decode_input(value, where)
    return {k: _decode(v, f"{where}.{k}") for k, v in value.items()}


def _decode_array(spec: Any, where: str) -> np.ndarray:
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data"}:
        raise _Invalid(f"{where}: an array needs exactly 'dtype', 'shape' and 'data'")
    dtype, shape, data = spec["dtype"], spec["shape"], spec["data"]
    if dtype not in _DTYPES:
        raise _Invalid(f"{where}: array dtype {dtype!r} is not one of {list(_DTYPES)}")
    if not isinstance(shape, list) or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in shape):
        raise _Invalid(f"{where}: array shape {shape!r} is not a list of non-negative integers")
    if not isinstance(data, list) or len(data) != math.prod(shape):
        raise _Invalid(f"{where}: array of shape {shape} needs {math.prod(shape)} values")
    if any(isinstance(v, (list, dict, str)) or v is None for v in data):
        raise _Invalid(f"{where}: array values must be numbers")
    return np.array(data, dtype=dtype).reshape(shape)


def _decode_input(value: dict, where: str) -> Modality:
    """A named input: its kind must be registered; its settings are validated by the kind's model."""
    kind = value[_INPUT]
    if set(value) != {_INPUT, "fields"} or not isinstance(value["fields"], dict):
        raise _Invalid(f"{where}: an input needs exactly '__input__' and 'fields'")
    try:
        cls = get_modality(kind) if isinstance(kind, str) else None
    except ValueError as err:
        raise _Invalid(f"{where}: {err}") from None
    if cls is None:
        raise _Invalid(f"{where}: input kind {kind!r} is not a name")
    fields = dict(value["fields"])
    for f in dataclasses.fields(cls):  # fields a kind gained later (cls.added_fields) take their default
        if f.name in getattr(cls, "added_fields", ()) and f.name not in fields:
            fields[f.name] = _encode(f.default, f"{where}.{f.name}")
    settings = fields.get("settings")
    try:
        fields["settings"] = cls.Settings.model_validate(settings)
    except Exception as err:  # pydantic's ValidationError: the settings of another kind or doctored
        raise _Invalid(f"{where}.settings: not valid {kind} settings ({_first_line(err)})") from None
    decoded = _decode_fields({k: v for k, v in fields.items() if k != "settings"} | {"settings": None}, cls, where)
    decoded["settings"] = fields["settings"]
    hints = typing.get_type_hints(cls)
    wrong = [k for k, v in decoded.items() if k in hints and k != "settings" and not _conforms(v, hints[k])]
    if wrong or not isinstance(decoded["settings"], InputSettings):
        raise _Invalid(f"{where}: fields of the wrong type: {wrong}")
    return cls(**decoded)


def _decode_object(value: dict, where: str) -> Any:
    name = value[_CLASS]
    if name not in _CLASSES:
        raise _Invalid(f"{where}: class {name!r} is not one astroreg stores (allowed: {sorted(_CLASSES)})")
    if set(value) != {_CLASS, "params", "fitted"}:
        raise _Invalid(f"{where}: a {name} needs exactly '__class__', 'params' and 'fitted'")
    cls, required = _CLASSES[name]
    params, fitted = value["params"], value["fitted"]
    if not isinstance(params, dict) or not isinstance(fitted, dict):
        raise _Invalid(f"{where}: the params and fitted of a {name} must be objects")
    allowed = _param_names(cls)
    unknown = sorted(set(params) - allowed)
    missing = [] if name in _THIRD_PARTY else sorted(allowed - set(params))
    if unknown or missing:
        raise _Invalid(f"{where}: {name} parameters: missing {missing}, unknown {unknown}")
    lacking = [k for k in required if k not in fitted]
    odd = [k for k in fitted if not _is_fitted(k)]
    if lacking or odd:
        raise _Invalid(f"{where}: {name} fitted attributes: missing {lacking}, not allowed {odd}")
    obj = cls(**{k: _decode(v, f"{where}.params.{k}") for k, v in params.items()})
    for k, v in fitted.items():
        setattr(obj, k, _decode(v, f"{where}.{k}"))
    return obj
