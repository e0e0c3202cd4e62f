"""Neural-network building blocks: `Module`, layers, losses, initializers (PyTorch names).

Each block below re-exports one family, name by name.
"""
from ember.nn import functional, init, utils
from ember.nn.containers import ModuleDict, ModuleList, Sequential
from ember.nn.layers.linear import Bilinear, Flatten, Identity, Linear, Unflatten
from ember.nn.module import IncompatibleKeys, Module, Parameter, StateDictError

# ---- conv / pool / upsample layers ----
# ---- end conv / pool / upsample layers ----

# ---- activation / normalization / dropout / embedding layers ----
# ---- end activation / normalization / dropout / embedding layers ----

# ---- loss modules ----
# ---- end loss modules ----

# ---- recurrent layers ----
# ---- end recurrent layers ----

# ---- attention / transformer / RBM layers ----
# ---- end attention / transformer / RBM layers ----
