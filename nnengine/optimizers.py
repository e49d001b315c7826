"""Optimizers with Keras 3's update rules, defaults and names, on the backend's fused in-place updates.

The base class (learning rate and schedules, slots, clipping, config) is ``optimizer_base.Optimizer``.
Each optimizer here calls one fused primitive per parameter per step (``nnengine.functional.*_update``)
with Keras's formula (see docs/keras.md); t is the step number, from 1:

* SGD:      v = momentum v - lr g;  w += v   (Nesterov: w += momentum v - lr g)
* Adam:     m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
            w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
* AdamW:    Adam after the decoupled decay w -= lr * weight_decay * w
* RMSprop:  s = rho s + (1 - rho) g^2;  w -= lr g / sqrt(s + eps)   (centered: s - mean(g)^2)
* Adagrad:  a += g^2;  w -= lr g / sqrt(a + eps)
* Adamax:   m = b1 m + (1 - b1) g;  u = max(b2 u, |g|);  w -= lr / (1 - b1^t) * m / (u + eps)
* Nadam:    Adam's m and v; with u_t = b1 (1 - 0.5 * 0.96^t) and U_t = u_1 ... u_t,
            w -= lr (u_{t+1} m / (1 - U_{t+1}) + (1 - u_t) g / (1 - U_t)) / (sqrt(v / (1 - b2^t)) + eps)
* Lion:     w -= lr sign(b1 m + (1 - b1) g);  m = b2 m + (1 - b2) g
* Adadelta: a = rho a + (1 - rho) g^2;  d = -sqrt(s + eps) g / sqrt(a + eps);  s = rho s + (1 - rho) d^2;
            w += lr d
* Ftrl:     n' = n + g^2;  z += g + 2 l2s w - (n'^c - n^c) / lr w   (c = -learning_rate_power);
            w = (clip(z, -l1, l1) - z) / (n'^c / lr + 2 (l2 + beta / (2 lr)));  n = n'
``weight_decay`` on any optimizer is Keras's decoupled decay, applied before the step.
"""
import numpy as np

from . import arguments
from . import functional as F
from . import schedules
from .optimizer_base import Optimizer, fraction, positive
from .backends.optimizer_scalars import nadam_momentum_factor
from .tensor import zeros
from .utils import lookup

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "Nadam", "Lion", "Adadelta", "Ftrl",
           "get", "serialize", "schedules"]


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum. Keras defaults: lr 0.01, momentum 0."""

    hyper_parameters = ("momentum", "nesterov")

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, name="sgd", **clipping):
        super().__init__(learning_rate, weight_decay, name, **clipping)
        self.momentum = fraction(self.name, "momentum", momentum, high_open=False)
        self.nesterov = arguments.boolean(self.name, "nesterov", nesterov)

    def active_slot_names(self):
        """momentum when momentum > 0, else none."""
        return ("momentum",) if self.momentum else ()

    def update_scalars(self):
        """(lr, momentum, nesterov, weight_decay), as ``Backend.sgd_update`` takes them."""
        return (self._step_learning_rate(), self.momentum, self.nesterov, self._decay())

    def update(self, param, grad, slots):
        """v = momentum v - lr g;  w += v (or the Nesterov form)."""
        F.sgd_update(param, grad, slots.get("momentum"), *self.update_scalars(), validate=False)


class Adam(Optimizer):
    """Adam (Kingma and Ba) with Keras's defaults: lr 0.001, beta_1 0.9, beta_2 0.999, epsilon 1e-7."""

    slot_names = ("momentum", "velocity")
    grouped_slots = ("velocity_hat",)        # Keras: each weight's momentum and velocity, then every velocity_hat
    hyper_parameters = ("beta_1", "beta_2", "epsilon", "amsgrad")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 weight_decay=None, name="adam", **clipping):
        super().__init__(learning_rate, weight_decay, name, **clipping)
        self.beta_1 = fraction(self.name, "beta_1", beta_1)
        self.beta_2 = fraction(self.name, "beta_2", beta_2)
        self.epsilon = positive(self.name, "epsilon", epsilon)
        self.amsgrad = arguments.boolean(self.name, "amsgrad", amsgrad)

    def active_slot_names(self):
        """momentum and velocity, plus velocity_hat (the running max of v) with AMSGrad."""
        return self.slot_names + (("velocity_hat",) if self.amsgrad else ())

    def update_scalars(self):
        """(step, lr, beta_1, beta_2, epsilon, amsgrad, weight_decay), as ``Backend.adam_update`` takes them."""
        return (self.iterations, self._step_learning_rate(), self.beta_1, self.beta_2, self.epsilon, self.amsgrad,
                self._decay())

    def update(self, param, grad, slots):
        """The Adam step (see the module docstring); the step count t is ``iterations``."""
        step, *rest = self.update_scalars()
        F.adam_update(param, grad, slots["momentum"], slots["velocity"], step, slots.get("velocity_hat"), *rest,
                      validate=False)

    def update_many(self, pairs):
        """The Adam step of every pair at once: one ``adam_update_many`` per backend (on CUDA one launch for
        all the parameters, a multi-tensor apply). A subclass that overrides ``update`` keeps its own."""
        if type(self).update is not Adam.update:
            return super().update_many(pairs)
        by_backend = {}
        for grad, param in pairs:
            slots = self.slots(param)
            velocity_hat = slots.get("velocity_hat")
            by_backend.setdefault(param.backend, []).append(
                (param._data, grad._data, slots["momentum"]._data, slots["velocity"]._data,
                 None if velocity_hat is None else velocity_hat._data))
        step, *rest = self.update_scalars()
        for backend, rows in by_backend.items():
            params, grads, ms, vs, v_maxes = (tuple(column) for column in zip(*rows))
            backend.adam_update_many(params, grads, ms, vs, v_maxes, int(step), *rest)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter); Keras's default weight_decay is 0.004."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, name="adamw", **clipping):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, name, **clipping)


class RMSprop(Optimizer):
    """RMSprop with Keras's defaults: lr 0.001, rho 0.9, momentum 0, epsilon 1e-7 (inside the square root)."""

    hyper_parameters = ("rho", "momentum", "epsilon", "centered")
    grouped_slots = ("velocity", "momentum", "average_gradient")    # Keras: every velocity, then every momentum...

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 weight_decay=None, name="rmsprop", **clipping):
        super().__init__(learning_rate, weight_decay, name, **clipping)
        self.rho = fraction(self.name, "rho", rho)
        self.centered = arguments.boolean(self.name, "centered", centered)
        self.momentum = fraction(self.name, "momentum", momentum, high_open=False)
        self.epsilon = positive(self.name, "epsilon", epsilon)

    def active_slot_names(self):
        """velocity (Keras's name for the mean square), then momentum and average_gradient when configured."""
        return (("velocity",) + (("momentum",) if self.momentum else ())
                + (("average_gradient",) if self.centered else ()))

    def update(self, param, grad, slots):
        """The RMSprop step (see the module docstring)."""
        # The slot names are Keras's, because they name the saved variables: Keras calls the running mean
        # of g^2 "velocity" and the momentum buffer "momentum". The keywords say what each one holds.
        lr, rho, momentum, epsilon, centered, weight_decay = self.update_scalars()
        F.rmsprop_update(param, grad, mean_square=slots["velocity"], mean_grad=slots.get("average_gradient"),
                         velocity=slots.get("momentum"), lr=lr, rho=rho, momentum=momentum, epsilon=epsilon,
                         centered=centered, weight_decay=weight_decay, validate=False)

    def update_scalars(self):
        """(lr, rho, momentum, epsilon, centered, weight_decay), as ``Backend.rmsprop_update`` takes them."""
        return (self._step_learning_rate(), self.rho, self.momentum, self.epsilon, self.centered, self._decay())


class Adagrad(Optimizer):
    """Adagrad with Keras's defaults: lr 0.001, initial_accumulator_value 0.1, epsilon 1e-7."""

    slot_names = ("accumulator",)
    hyper_parameters = ("initial_accumulator_value", "epsilon")

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, weight_decay=None,
                 name="adagrad", **clipping):
        super().__init__(learning_rate, weight_decay, name, **clipping)
        self.initial_accumulator_value = positive(self.name, "initial_accumulator_value",
                                                   initial_accumulator_value, allow_zero=True)
        self.epsilon = positive(self.name, "epsilon", epsilon)

    def _initial_slot(self, name, param):
        slot = zeros(param.shape, dtype=param.dtype, device=param.device)
        return slot + self.initial_accumulator_value

    def update(self, param, grad, slots):
        """a += g^2;  w -= lr g / sqrt(a + eps)."""
        F.adagrad_update(param, grad, slots["accumulator"], *self.update_scalars(), validate=False)

    def update_scalars(self):
        """(lr, epsilon, weight_decay), as ``Backend.adagrad_update`` takes them."""
        return (self._step_learning_rate(), self.epsilon, self._decay())


class Adamax(Optimizer):
    """Adamax (Kingma and Ba's Adam with the infinity norm) with Keras's defaults: lr 0.001, beta_1 0.9, beta_2
    0.999, epsilon 1e-7. m += (1 - b1)(g - m); u = max(b2 u, |g|); w -= lr / (1 - b1^t) m / (u + eps)."""

    slot_names = ("momentum", "norm")
    hyper_parameters = ("beta_1", "beta_2", "epsilon")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None,
                 name="adamax", **clipping):
        super().__init__(learning_rate, weight_decay, name, **clipping)
        self.beta_1 = fraction(self.name, "beta_1", beta_1)
        self.beta_2 = fraction(self.name, "beta_2", beta_2)
        self.epsilon = positive(self.name, "epsilon", epsilon)

    def update_scalars(self):
        """(step, lr, beta_1, beta_2, epsilon, weight_decay), as ``Backend.adamax_update`` takes them."""
        return self.iterations, self._step_learning_rate(), self.beta_1, self.beta_2, self.epsilon, self._decay()

    def update(self, param, grad, slots):
        """The Adamax step (see the class docstring); the step count t is ``iterations``."""
        F.adamax_update(param, grad, slots["momentum"], slots["norm"], *self.update_scalars(), validate=False)


class Nadam(Optimizer):
    """Nadam (Dozat: Adam with Nesterov momentum) with Keras's defaults: lr 0.001, beta_1 0.9, beta_2 0.999,
    epsilon 1e-7; Keras's formula (see the module docstring), momentum schedule u_t = beta_1 (1 - 0.5 * 0.96^t)."""

    slot_names = ("momentum", "velocity")
    hyper_parameters = ("beta_1", "beta_2", "epsilon")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None,
                 name="nadam", **clipping):
        super().__init__(learning_rate, weight_decay, name, **clipping)
        self.beta_1 = fraction(self.name, "beta_1", beta_1)
        self.beta_2 = fraction(self.name, "beta_2", beta_2)
        self.epsilon = positive(self.name, "epsilon", epsilon)
        self._product_at = (0, 1.0)         # (t, u_1 ... u_t), advanced one step at a time

    def u_product(self, step=None):
        """u_1 u_2 ... u_step (``step`` defaults to ``iterations``): a function of the step count alone, so a
        restored step count restores it (Keras keeps it as a variable, which it saves after the slots)."""
        step = self.iterations if step is None else step
        done, product = self._product_at if self._product_at[0] <= step else (0, 1.0)
        for t in range(done + 1, step + 1):
            product *= nadam_momentum_factor(t, self.beta_1)
        self._product_at = (step, product)
        return product

    def extra_variables(self):
        """Keras's ``u_product``, saved after the slots under Keras's own name for it ('variable')."""
        return [("variable", np.float32(self.u_product()))]

    def update_scalars(self):
        """(step, u_product, lr, beta_1, beta_2, epsilon, weight_decay), as ``Backend.nadam_update`` takes them."""
        return (self.iterations, self.u_product(), self._step_learning_rate(), self.beta_1, self.beta_2,
                self.epsilon, self._decay())

    def update(self, param, grad, slots):
        """The Nadam step (see the module docstring); the step count t is ``iterations``."""
        F.nadam_update(param, grad, slots["momentum"], slots["velocity"], *self.update_scalars(), validate=False)


class Lion(Optimizer):
    """Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms") with Keras's defaults: lr 0.001,
    beta_1 0.9 (in (0, 1]), beta_2 0.99. Every step moves each weight by exactly lr (or 0): use a smaller
    learning rate than Adam's."""

    slot_names = ("momentum",)
    hyper_parameters = ("beta_1", "beta_2")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, weight_decay=None, name="lion", **clipping):
        super().__init__(learning_rate, weight_decay, name, **clipping)
        # Keras refuses beta_1 = 0: the step would be sign(g), SignSGD
        self.beta_1 = arguments.number(self.name, "beta_1", beta_1, low=0, low_open=True, high=1)
        self.beta_2 = fraction(self.name, "beta_2", beta_2, high_open=False)

    def update_scalars(self):
        """(lr, beta_1, beta_2, weight_decay), as ``Backend.lion_update`` takes them."""
        return self._step_learning_rate(), self.beta_1, self.beta_2, self._decay()

    def update(self, param, grad, slots):
        """The Lion step (see the module docstring)."""
        F.lion_update(param, grad, slots["momentum"], *self.update_scalars(), validate=False)


class Adadelta(Optimizer):
    """Adadelta (Zeiler) with Keras's defaults: lr 0.001, rho 0.95, epsilon 1e-7 (Keras keeps a learning rate;
    Zeiler's original is lr 1.0)."""

    slot_names = ("accumulated_grad", "accumulated_delta_var")
    hyper_parameters = ("rho", "epsilon")

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay=None, name="adadelta", **clipping):
        super().__init__(learning_rate, weight_decay, name, **clipping)
        self.rho = fraction(self.name, "rho", rho)
        self.epsilon = positive(self.name, "epsilon", epsilon)

    def update_scalars(self):
        """(lr, rho, epsilon, weight_decay), as ``Backend.adadelta_update`` takes them."""
        return self._step_learning_rate(), self.rho, self.epsilon, self._decay()

    def update(self, param, grad, slots):
        """The Adadelta step (see the module docstring)."""
        F.adadelta_update(param, grad, slots["accumulated_grad"], slots["accumulated_delta_var"],
                          *self.update_scalars(), validate=False)


class Ftrl(Optimizer):
    """FTRL-proximal (McMahan et al.), Keras's "Follow The Regularized Leader", with Keras's defaults: lr 0.001,
    learning_rate_power -0.5, initial_accumulator_value 0.1, and no L1, L2, L2-shrinkage or beta. Its L1 term sets
    weights exactly to 0 (sparse linear models); the step divides by the learning rate, so it must stay > 0."""

    slot_names = ("accumulator", "linear")
    hyper_parameters = ("learning_rate_power", "initial_accumulator_value", "l1_regularization_strength",
                        "l2_regularization_strength", "l2_shrinkage_regularization_strength", "beta")

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                 l1_regularization_strength=0.0, l2_regularization_strength=0.0,
                 l2_shrinkage_regularization_strength=0.0, beta=0.0, weight_decay=None, name="ftrl", **clipping):
        super().__init__(learning_rate, weight_decay, name, **clipping)
        self.learning_rate_power = arguments.number(self.name, "learning_rate_power", learning_rate_power, high=0)
        self.initial_accumulator_value = positive(self.name, "initial_accumulator_value", initial_accumulator_value,
                                                  allow_zero=True)
        for key, value in (("l1_regularization_strength", l1_regularization_strength),
                           ("l2_regularization_strength", l2_regularization_strength),
                           ("l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength),
                           ("beta", beta)):
            setattr(self, key, positive(self.name, key, value, allow_zero=True))

    def _initial_slot(self, name, param):
        slot = zeros(param.shape, dtype=param.dtype, device=param.device)
        return slot + self.initial_accumulator_value if name == "accumulator" else slot

    def update_scalars(self):
        """(lr, learning_rate_power, l1, l2, l2_shrinkage, beta, weight_decay), as ``Backend.ftrl_update`` takes
        them."""
        return (self._step_learning_rate(), self.learning_rate_power, self.l1_regularization_strength,
                self.l2_regularization_strength, self.l2_shrinkage_regularization_strength, self.beta, self._decay())

    def update(self, param, grad, slots):
        """The FTRL step (see the module docstring)."""
        F.ftrl_update(param, grad, slots["accumulator"], slots["linear"], *self.update_scalars(), validate=False)


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad, "adamax": Adamax,
            "nadam": Nadam, "lion": Lion, "adadelta": Adadelta, "ftrl": Ftrl}
_CLASSES = {cls.__name__: cls for cls in _BY_NAME.values()}


def get(identifier):
    """Resolve an optimizer: one of the names above in lower case (Keras defaults), a config or an object."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        return lookup("optimizer", identifier.lower(), _BY_NAME)()
    if isinstance(identifier, dict):
        cls = lookup("optimizer class", identifier.get("class_name"), _CLASSES)
        config = identifier.get("config") or {}
        if not isinstance(config, dict):
            raise TypeError(f"optimizer {identifier.get('class_name')!r}: its 'config' must be a dict, got "
                            f"{type(config).__name__}")
        return cls.from_config(config)
    raise TypeError(f"optimizer must be a name, a config dict or an Optimizer, got {type(identifier).__name__}")


def serialize(optimizer):
    """Keras's {'class_name': ..., 'config': ...} of an optimizer (as in a training_config)."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}
