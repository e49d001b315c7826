"""The operation codes of the elementwise kernels (``elementwise.py``), in a module without numba.

A kernel picks its operation by an integer code (one loop per code, see ``elementwise.py``). The backend
needs the codes before it knows whether a kernel will run at all, and importing them must not load numba.
"""
# unary op codes
NEG, EXP, LOG, SQRT, TANH, SIGMOID, RELU, ERF = range(8)
UNARY = {"neg": NEG, "exp": EXP, "log": LOG, "sqrt": SQRT, "tanh": TANH, "sigmoid": SIGMOID, "relu": RELU,
         "erf": ERF}
# binary op codes
ADD, SUB, MUL, DIV, POW, MAX, MIN = range(7)
BINARY = {"add": ADD, "sub": SUB, "mul": MUL, "div": DIV, "power": POW, "maximum": MAX, "minimum": MIN}
# comparison codes
EQ, NE, LT, LE, GT, GE = range(6)
COMPARE = {"equal": EQ, "not_equal": NE, "less": LT, "less_equal": LE, "greater": GT, "greater_equal": GE}
