"""The one table of activations a fused dense kernel applies itself: name -> integer code.

It lives on floor 1 because every kernel language needs the codes: the numba kernels
(``cpu/nn.py``) import them, the CUDA loader (``cuda/loader.py``) turns them into ``#define
ACT_<NAME> <code>`` lines that it puts in front of every CUDA source, and the backends
(floor 2) and the API (floor 4) take the names from here. Adding an activation means adding
it here and to each kernel's branch on the code.
"""

#: name -> code; "none" is the identity (a linear layer)
ACTIVATION_CODES = {"none": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "softmax": 4}

#: the names, in code order
ACTIVATION_NAMES = tuple(sorted(ACTIVATION_CODES, key=ACTIVATION_CODES.get))


def activation_code(name):
    """The code of fused activation ``name``; ValueError naming the valid ones for any other."""
    code = ACTIVATION_CODES.get(name)
    if code is None:
        raise ValueError(f"unknown fused activation {name!r}: expected one of {', '.join(ACTIVATION_NAMES)}")
    return code


def cuda_defines():
    """The table as C preprocessor lines, ``#define ACT_RELU 1`` and so on, for the CUDA sources."""
    return "".join(f"#define ACT_{name.upper()} {code}\n" for name, code in ACTIVATION_CODES.items())
