"""The functional core of `ember.nn`: layers as functions of inputs and weights.

Modules in `ember.nn` own parameters and call these. Each block re-exports one family.
"""
from ember.nn.functional.linear import bilinear, linear

# ---- conv / pool / upsample ----
# ---- end conv / pool / upsample ----

# ---- activation / normalization / dropout / embedding ----
# ---- end activation / normalization / dropout / embedding ----

# ---- losses ----
# ---- end losses ----

# ---- recurrent ----
# ---- end recurrent ----

# ---- attention ----
# ---- end attention ----
