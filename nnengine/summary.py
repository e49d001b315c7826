"""``model.summary()``: the layer table Keras 3 prints, drawn with box characters.

    Model: "sequential"
    ┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
    ┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
    ┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
    │ dense (Dense)                   │ (None, 64)             │           704 │
    └─────────────────────────────────┴────────────────────────┴───────────────┘
     Total params: 704 (2.75 KB)

Memory sizes count each parameter at its dtype's size, in powers of 1024.
"""
import numpy as np

COLUMN_WIDTHS = (31, 22, 13)     # text widths; each cell adds a space on either side


def readable_size(size):
    """Bytes as Keras prints them: '12.16 KB', '0.00 B'."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _rule(left, fill, middle, right, widths):
    return left + middle.join(fill * (w + 2) for w in widths) + right


def _row(edge, cells, widths):
    name, shape, params = cells
    return (f"{edge} {name:<{widths[0]}} {edge} {shape:<{widths[1]}} {edge} {params:>{widths[2]}} {edge}")


def _shape_text(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _layer_rows(model):
    shape = model.input_shape
    for layer in model.layers:
        label = f"{layer.name} ({type(layer).__name__})"
        if shape is not None and layer.built:
            shape = layer.compute_output_shape(shape)
            yield label, _shape_text(shape), f"{layer.count_params():,}"
        else:
            yield label, "?", "0 (unbuilt)"


def _bytes(tensors):
    return sum(int(np.prod(t.shape)) * np.dtype(t.dtype).itemsize for t in tensors)


def _count_line(label, count, size):
    return f" {label}: {count:,} ({readable_size(size)})"


def summary_lines(model):
    """The lines of ``model.summary()``."""
    rows = list(_layer_rows(model))
    widths = [max([w, *[len(r[i]) for r in rows]]) for i, w in enumerate(COLUMN_WIDTHS)]
    lines = [f'Model: "{model.name}"', _rule("┏", "━", "┳", "┓", widths),
             _row("┃", ("Layer (type)", "Output Shape", "Param #"), widths), _rule("┡", "━", "╇", "┩", widths)]
    for position, row in enumerate(rows):
        if position:
            lines.append(_rule("├", "─", "┼", "┤", widths))
        lines.append(_row("│", row, widths))
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
