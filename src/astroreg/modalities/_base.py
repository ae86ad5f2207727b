"""The modality plug-in interface and its registry.

A modality (``images``, ``spectra``, ``tabular``, ...) is one registered class that owns
everything the engine would otherwise decide by branching on the kind of data: where it
is stored in a dataset and how it is read, its fitted preprocessing, the per-object shape
it gives the network, its default chunk size for prediction, its augmentation, its fast
prediction path, and how much of an object is usable (coverage). The engine (training
data, predict, baselines, tuning) speaks only to this interface.

A recipe input is one instance: :meth:`Modality.fit` learns its state on the training
split; :meth:`Modality.transform` gives network inputs of shape ``(n, *shape)``. The
fitted state is saved in ``preprocessors.json`` as plain data: the instance's dataclass
fields (allow-listed transforms, arrays, numbers), never pickled.

Adding a kind is one file::

    @register_modality
    @dataclass(eq=False)
    class Photometry(Modality):
        kind: ClassVar[str] = "photometry"
        Settings: ClassVar[type[InputSettings]] = PhotometrySettings  # kind: Literal["photometry"]
        mean_: np.ndarray | None = None

        def fit(self, dataset, rows, *, seed=0): ...
        def transform(self, dataset, rows, *, out=None): ...
        def shape_from_settings(...): ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from astroreg.config import InputSettings, register_input_settings
from astroreg.data import Dataset

_MODALITIES: dict[str, type[Modality]] = {}


@dataclass
class PredictReader:
    """How :func:`astroreg.pipeline.predict` reads one input chunk by chunk.

    Attributes
    ----------
    read : callable
        ``read(rows, k) -> array (n, *shape)``: the network input of ``rows`` (an index
        array or a slice) for chunk number ``k``.
    network : torch.nn.Module or None
        A replacement for the single-input network (e.g. with a preprocessing step folded
        into its first layer), or None to keep it.
    light : bool
        Reading costs little next to the forward pass: chunks are read in line rather than
        in a thread beside torch's.
    threads : {"all", "spare_one", "tune"}
        Torch's threads on CPU while chunks stream: all cores (the forward pass dominates),
        one fewer (the reading thread keeps a core busy), or chosen from the machine's load.
    distance : dict
        Keyword arguments for :meth:`astroreg.preprocess.TrainingDomain.input_distance`
        when the input is read in another form than it was fitted on (folded networks).
    """

    read: Callable[[Any, int], NDArray[np.float32]]
    network: Any = None
    light: bool = False
    threads: str = "spare_one"
    distance: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class Modality:
    """One named input of a recipe: a kind of data and its fitted preprocessing.

    Subclasses set the class attributes, add their fitted state as dataclass fields
    (ending in ``_`` or holding allow-listed transforms) and implement :meth:`fit`,
    :meth:`transform` and :meth:`shape_from_settings`.

    Attributes
    ----------
    kind : str
        The registry name (``inputs.<name>.kind``).
    Settings : type
        The pydantic settings model of the kind (a :class:`~astroreg.config.InputSettings`).
    group : str
        The dataset group the kind reads (``images``, ``spectra``, ``tabular``).
    chunk_size : int
        Objects read at a time by ``astroreg predict``.
    predict_batch : int or None
        Objects per forward pass at prediction (None: the whole chunk; dense networks run
        fastest on large batches).
    compile_network : bool
        Whether the prediction path should try a frozen TorchScript trace or inductor
        (convolutional networks gain; dense ones stay eager).
    predict_threads : {"all", "spare_one", "tune"}
        Torch's threads on CPU while predict streams chunks (:attr:`PredictReader.threads`).
    baseline_inputs : {"model", "tabular"}
        What a classical baseline with ``inputs: auto`` reads for a recipe with this input:
        the preprocessed network input, or the catalogue columns.
    name : str
        The input's name in the recipe.
    settings : InputSettings
        Its settings from the recipe.
    shape : tuple of int
        Per-object network input shape, known after :meth:`fit`.
    """

    kind: ClassVar[str] = ""
    Settings: ClassVar[type[InputSettings]] = InputSettings
    group: ClassVar[str] = ""
    chunk_size: ClassVar[int] = 4096
    predict_batch: ClassVar[int | None] = None
    compile_network: ClassVar[bool] = False
    predict_threads: ClassVar[str] = "spare_one"
    baseline_inputs: ClassVar[str] = "tabular"

    name: str
    settings: InputSettings
    shape: tuple[int, ...] = ()

    # -- what every kind implements -------------------------------------------------------
    def fit(self, dataset: Dataset, rows: NDArray[np.int64], *, seed: int = 0) -> Modality:
        """Learn the preprocessing on the training ``rows`` of ``dataset``; set :attr:`shape`; return self."""
        raise NotImplementedError

    def transform(self, dataset: Dataset, rows: NDArray | slice, *,
                  out: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        """Network inputs of ``rows``, float32 of shape ``(n, *shape)``.

        ``out`` may receive them (a caller streaming chunks reuses its buffers); kinds
        that cannot use it ignore it.
        """
        raise NotImplementedError

    @classmethod
    def shape_from_settings(cls, settings: InputSettings, dataset: Dataset | None) -> tuple[int, ...]:
        """Per-object input shape from the settings alone, or with the dataset when it is at hand.

        Raises
        ------
        ValueError
            If the shape cannot be told without the dataset (say which setting fixes it).
        """
        raise NotImplementedError

    # -- what a kind may override ---------------------------------------------------------
    def check_dataset(self, dataset: Dataset) -> None:
        """Raise a clear ValueError when ``dataset`` does not hold this input."""
        if self.group and self.group not in dataset.modalities:
            raise ValueError(
                f"input {self.name!r} is kind {self.kind!r}, read from /{self.group}, but {dataset.path} has "
                f"{list(dataset.modalities)}; change inputs.{self.name}.kind or use another dataset"
            )

    def augment(self, x: NDArray[np.float32], n: int, copies: int, noise_fraction: tuple[float, float],
                seed: int) -> NDArray[np.float32]:
        """Fill ``x[n:]`` with ``copies`` augmented copies of ``x[:n]`` in place (``training.augment``).

        Raises
        ------
        ValueError
            If the kind has no augmentation (the default).
        """
        raise ValueError(
            f"training.augment.copies is {copies} but input {self.name!r} is kind {self.kind!r}, which has no "
            "noise augmentation; set training.augment.copies: 0"
        )

    @property
    def augments(self) -> bool:
        """Whether :meth:`augment` is implemented for this kind."""
        return type(self).augment is not Modality.augment

    def augment_batch(self, x: NDArray[np.float32], noise_fraction: tuple[float, float],
                      seed: int) -> NDArray[np.float32]:
        """One augmented copy of every object of ``x`` (streamed training data), a new array."""
        out = np.concatenate([x, x])
        return self.augment(out, len(x), 1, noise_fraction, seed)[len(x):]

    def coverage(self, dataset: Dataset, rows: NDArray | slice) -> NDArray[np.float64] | None:
        """Usable fraction of each object (e.g. good pixels on a spectral grid); None where it has no meaning."""
        return None

    def guaranteed_coverage(self, dataset: Dataset) -> float:
        """Least :meth:`coverage` every object of ``dataset`` is known to have without reading it (0: unknown)."""
        return 0.0

    def predict_reader(self, dataset: Dataset, network: Any | None, *, chunk_size: int,
                       n_objects: int, fold: bool = True) -> PredictReader:
        """How predict reads this input (the plain path: :meth:`transform` chunk by chunk).

        ``network`` is the run's single-input network (None for a multi-input network),
        which a kind may replace by a faster equivalent when ``fold`` is true.
        """
        return PredictReader(read=lambda rows, k: self.transform(dataset, rows), threads=self.predict_threads)

    def check_loaded(self) -> None:
        """Raise ValueError unless the state read from a run folder fits together (a zero input goes through)."""
        if not self.shape or min(self.shape) < 1:
            raise ValueError(f"input {self.name!r}: shape {self.shape} is not a shape")

    def tabular_columns(self) -> tuple[str, ...]:
        """Dataset columns this input reads from ``/tabular`` (so baselines can leave them out); none by default."""
        return ()


def register_modality(cls: type[Modality]) -> type[Modality]:
    """Register a :class:`Modality` subclass under its ``kind`` (a class decorator).

    Its ``Settings`` become the schema of ``inputs.<name>`` with that kind, and its
    instances may be stored in a run folder's ``preprocessors.json``.

    Raises
    ------
    ValueError
        If the class has no ``kind``, its settings' ``kind`` does not default to it, or
        another class holds the kind.
    """
    kind = cls.kind
    if not kind:
        raise ValueError(f"{cls.__name__} has no kind; set kind: ClassVar[str] = '<name>'")
    default = cls.Settings.model_fields["kind"].default if "kind" in cls.Settings.model_fields else None
    if default != kind:
        raise ValueError(f"{cls.__name__}.Settings must have kind: Literal[{kind!r}] = {kind!r}")
    old = _MODALITIES.get(kind)
    if old is not None and old.__qualname__ != cls.__qualname__:
        raise ValueError(f"input kind {kind!r} is already registered by {old.__name__}")
    register_input_settings(kind, cls.Settings)
    _MODALITIES[kind] = cls
    return cls


def get_modality(kind: str) -> type[Modality]:
    """The registered class of ``kind``."""
    try:
        return _MODALITIES[kind]
    except KeyError:
        raise ValueError(f"input kind {kind!r} is not registered; kinds: {list_modalities()}") from None


def list_modalities() -> list[str]:
    """Registered input kinds."""
    return sorted(_MODALITIES)


def baseline_inputs(kinds) -> str:
    """What classical baselines with ``inputs: auto`` read for inputs of these kinds.

    ``model`` (the preprocessed network inputs, e.g. resampled spectra) when every kind
    prefers it, else ``tabular`` (the dataset's catalogue columns).
    """
    prefs = {get_modality(k).baseline_inputs for k in kinds}
    return "model" if prefs == {"model"} else "tabular"


def create_input(name: str, settings: InputSettings) -> Modality:
    """An unfitted input of the kind ``settings.kind``."""
    return get_modality(settings.kind)(name=name, settings=settings)


class LazyIds:
    """The ids of ``rows``, read from the dataset only when an error message asks for one.

    Decoding every id of a large dataset costs ~0.3 us an object, as much as writing the
    predictions to Parquet; the transforms need them only to name bad objects.
    """

    def __init__(self, dataset: Dataset, rows: NDArray | slice | None) -> None:
        self._dataset, self._rows, self._ids = dataset, rows, None

    def __getitem__(self, i):
        if self._ids is None:
            self._ids = self._dataset.ids if self._rows is None else self._dataset.ids[self._rows]
        return self._ids[i]

    def __len__(self) -> int:
        if isinstance(self._rows, slice):
            return len(range(len(self._dataset))[self._rows])
        return len(self._dataset) if self._rows is None else len(self._rows)


def row_index(dataset: Dataset, rows: NDArray | slice) -> NDArray[np.int64]:
    """``rows`` as an index array (a slice of a chunk becomes its row numbers)."""
    return np.arange(len(dataset))[rows] if isinstance(rows, slice) else np.asarray(rows)
