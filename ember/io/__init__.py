"""Files: weights (`save`/`load`: safetensors with checksums), whole models (`save_model`/
`load_model`: architecture as JSON and weights in one file, rebuilt from registered classes
only) and crash-safe writes (`atomic_write`). Nothing on the load path unpickles or imports
code named in a file."""

from ember.io.files import CheckpointError, atomic_write
from ember.io.model_files import (
    capture_init_arguments,
    load_model,
    load_weights,
    register,
    save_model,
    save_weights,
)
from ember.io.weights import load, load_metadata, save

__all__ = ["CheckpointError", "atomic_write", "capture_init_arguments", "load",
           "load_metadata", "load_model", "load_weights", "register", "save", "save_model",
           "save_weights"]
