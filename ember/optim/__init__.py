"""Optimizers, learning-rate schedules and gradient clipping."""
# ---- optimizers ----
# ---- end optimizers ----
