"""``model.summary()``: the layer table Keras 3 prints, drawn with box characters.

    Model: "sequential"
    ┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
    ┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
    ┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
    │ dense (Dense)                   │ (None, 64)             │           704 │
    └─────────────────────────────────┴────────────────────────┴───────────────┘
     Total params: 704 (2.75 KB)

A functional model that is not a chain gets a fourth column, "Connected to": each input of each call of
the layer as ``layer[node][0]``. The table is as wide as Keras makes it: 88 characters (108 with the fourth
column), or the terminal's width less 4 when that is smaller (80 columns when the output is not a
terminal: 76). Keras splits the width by fixed fractions and its table library then shrinks every column
evenly to make room for the borders; a text wider than its column wraps at spaces, and a word wider than
the column is cut with "…". Memory sizes count each parameter at its dtype's size, in powers of 1024.
"""
import shutil

import numpy as np

#: Keras's table widths and column fractions, without and with the "Connected to" column
LAYOUTS = {False: (88, (0.45, 0.80, 1.0)), True: (108, (0.3, 0.56, 0.74, 1.0))}
HEADERS = ("Layer (type)", "Output Shape", "Param #", "Connected to")


def readable_size(size):
    """Bytes as Keras prints them: '12.16 KB', '0.00 B'."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def column_widths(connected):
    """The text width of each column, as Keras and its table library (rich) compute them."""
    default, fractions = LAYOUTS[connected]
    line_length = min(default, shutil.get_terminal_size().columns - 4)
    requested, used = [], 0
    for fraction in fractions:                      # each column's share, plus one space either side
        width = int(fraction * line_length) - used
        requested.append(width + 2)
        used += width
    excess = sum(requested) - (line_length - len(fractions) - 1)        # the borders take one character each
    widths, remaining, left = [], excess, len(requested)
    for width in requested:                         # shrink evenly: each column gives round(remaining / left)
        cut = min(width, round(remaining / left)) if remaining > 0 else 0
        widths.append(width - cut - 2)
        remaining, left = remaining - cut, left - 1
    return widths


def _wrapped(text, width):
    """``text`` in lines of at most ``width`` characters, broken at spaces; a longer word cut with '…'."""
    lines = []
    for word in text.split(" "):
        word = word if len(word) <= width else word[:width - 1] + "…"
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def _rule(left, fill, middle, right, widths):
    return left + middle.join(fill * (w + 2) for w in widths) + right


def _rows(edge, cells, widths):
    """The lines of one table row: each cell wrapped to its column, the parameter count right-aligned."""
    columns = [_wrapped(cell, width) for cell, width in zip(cells, widths)]
    height = max(len(column) for column in columns)
    lines = []
    for line in range(height):
        parts = []
        for position, (column, width) in enumerate(zip(columns, widths)):
            text = column[line] if line < len(column) else ""
            parts.append(f"{text:>{width}}" if position == 2 else f"{text:<{width}}")
        lines.append(f"{edge} " + f" {edge} ".join(parts) + f" {edge}")
    return lines


def _shape_text(shape):
    """(None, 8) as Keras prints it; a list of shapes (a layer with several outputs) as [(None, 8), (None, 8)]."""
    if isinstance(shape, list):
        return "[" + ", ".join(_shape_text(item) for item in shape) + "]"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _layer_rows(model):
    """(layer (type), output shape, parameters[, connected to]) for each layer."""
    connections = model.summary_connections() if hasattr(model, "summary_connections") else None
    for layer, shape in zip(model.layers, model.summary_shapes()):
        label = f"{layer.name} ({type(layer).__name__})"
        extra = () if connections is None else (connections[layer],)
        if shape is not None and layer.built:
            yield (label, _shape_text(shape), f"{layer.count_params():,}", *extra)
        else:
            yield (label, "?", "0 (unbuilt)", *extra)


def _bytes(tensors):
    return sum(int(np.prod(t.shape)) * np.dtype(t.dtype).itemsize for t in tensors)


def _count_line(label, count, size):
    return f" {label}: {count:,} ({readable_size(size)})"


def summary_lines(model):
    """The lines of ``model.summary()``."""
    rows = list(_layer_rows(model))
    widths = column_widths(connected=bool(rows) and len(rows[0]) == 4)
    lines = [f'Model: "{model.name}"', _rule("┏", "━", "┳", "┓", widths),
             *_rows("┃", HEADERS[:len(widths)], widths), _rule("┡", "━", "╇", "┩", widths)]
    for position, row in enumerate(rows):
        if position:
            lines.append(_rule("├", "─", "┼", "┤", widths))
        lines.extend(_rows("│", row, widths))
    lines.append(_rule("└", "─", "┴", "┘", widths))
    trainable, frozen = model.trainable_weights, model.non_trainable_weights
    optimizer_state = _optimizer_state(model)
    total = [*trainable, *frozen]
    total_count = sum(int(np.prod(t.shape)) for t in total) + optimizer_state[0]
    lines.append(_count_line("Total params", total_count, _bytes(total) + optimizer_state[1]))
    lines.append(_count_line("Trainable params", sum(int(np.prod(t.shape)) for t in trainable), _bytes(trainable)))
    lines.append(_count_line("Non-trainable params", sum(int(np.prod(t.shape)) for t in frozen), _bytes(frozen)))
    if optimizer_state[0]:
        lines.append(_count_line("Optimizer params", *optimizer_state))
    return lines


def _optimizer_state(model):
    """(count, bytes) of the optimizer's variables once it has state: its slots plus iteration and rate."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not optimizer.has_state:
        return 0, 0
    slots = [tensor for _, _, tensor in optimizer.slot_variables()]
    count = sum(int(np.prod(t.shape)) for t in slots) + 2
    return count, _bytes(slots) + 8
