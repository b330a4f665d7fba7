"""Network architectures, weight loading and conversion, and the model zoo."""

from vflow.models.film import FILM_SIZES, FilmNet
from vflow.models.rrdb import RRDBNet
from vflow.models.srvgg import SRVGGNetCompact
from vflow.models.zoo import ModelInfo, cache_dir, detect_architecture, import_ncnn, list_models, load_model

__all__ = [
    "FILM_SIZES",
    "FilmNet",
    "ModelInfo",
    "RRDBNet",
    "SRVGGNetCompact",
    "cache_dir",
    "detect_architecture",
    "import_ncnn",
    "list_models",
    "load_model",
]
