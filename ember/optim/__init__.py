"""Optimizers, learning-rate schedules and gradient clipping."""

from ember.optim import clip, lr_scheduler
from ember.optim.adam import Adam, Adamax, AdamW, NAdam, RAdam
from ember.optim.adaptive import Adadelta, Adagrad, RMSprop
from ember.optim.lion import Lion
from ember.optim.optimizer import Optimizer, OptimizerError
from ember.optim.sgd import SGD
