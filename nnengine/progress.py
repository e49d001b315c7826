"""Keras's progress display for fit, evaluate and predict.

verbose=1 shows, per step, a line such as::

    3/3 ━━━━━━━━━━━━━━━━━━━━ 0s 14ms/step - accuracy: 0.0875 - loss: 2.3676

with the estimated time left while the epoch runs and the time it took at the
end. On a terminal the line is redrawn in place with a carriage return (and
Keras's colours); when the output is not a terminal (a pipe, a file, a test's
captured stdout) nothing but the finished line is written, so logs hold whole
lines. verbose=2 writes one line per epoch::

    3/3 - 0s - 12ms/step - accuracy: 0.1500 - loss: 2.2886 - val_accuracy: 0.1000 - val_loss: 2.3280
"""
import math
import sys
import time

BAR_WIDTH = 20
BAR_CHAR = "\u2501"      # the heavy horizontal line Keras 3 draws its bar with


def format_value(value):
    """Keras's number format: 4 decimals, or scientific notation for |value| <= 1e-3.

    A metric with one value per class (F1Score without ``average``) shows their mean, as Keras's bar does.
    """
    if hasattr(value, "__len__"):
        value = sum(float(v) for v in value) / max(1, len(value))
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def format_step_time(seconds, unit="step"):
    """'14ms/step', '2s/step' or '850us/step', as Keras rounds them."""
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit}"
    return f"{seconds * 1e6:.0f}us/{unit}"


def format_eta(seconds):
    """Time left: '7s', '1:05' or '1:00:05'."""
    if seconds > 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds > 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


def format_logs(logs):
    """' - name: value' for each entry, in order."""
    return "".join(f" - {name}: {format_value(value)}" for name, value in logs.items())


class Progbar:
    """A progress display over ``target`` steps, with Keras's verbose modes 1 and 2.

    Args:
        target: the number of steps.
        verbose: 1 for the per-step bar, 2 for one line at the end, 0 for nothing.
        stream: where to write (sys.stdout by default, read when the bar is created).
        interval: the least time in seconds between two redraws of a terminal bar.
    """

    def __init__(self, target, verbose=1, stream=None, interval=0.05, unit="step"):
        # target None: the number of steps is unknown until the end (a generator): 'n/Unknown', no bar
        self.target = None if target is None else int(target)
        self.verbose, self.interval, self.unit = verbose, interval, unit
        self.stream = stream if stream is not None else sys.stdout
        self.dynamic = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.first_step_end = None
        self.last_draw = 0.0
        self.previous_width = 0

    def _step_time(self, current, now):
        """Seconds per step, leaving out the first (compile- and warm-up-heavy) step when there are others."""
        if current <= 0:
            return 0.0
        if current == 1 or self.first_step_end is None:
            return (now - self.start) / current
        return (now - self.first_step_end) / (current - 1)

    def update(self, current, logs=None, finalize=None):
        """Show step ``current`` of ``target`` with the running values in ``logs``."""
        now = time.perf_counter()
        if current >= 1 and self.first_step_end is None:
            self.first_step_end = now
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        if finalize and self.target is None:
            self.target = current                   # now known: the finished line shows n/n
        if self.verbose == 1 and (finalize or (self.dynamic and now - self.last_draw >= self.interval)):
            self._draw_bar(current, logs or {}, now, finalize)
            self.last_draw = now
        elif self.verbose == 2 and finalize:
            self._write(f"{self._counter(current)} - {now - self.start:.0f}s - "
                        f"{format_step_time(self._step_time(current, now), self.unit)}{format_logs(logs or {})}\n")

    def _counter(self, current):
        if self.target is None:
            return f"{current}/Unknown"
        digits = int(math.log10(self.target)) + 1 if self.target > 0 else 1
        return f"{current:{digits}d}/{self.target}"

    def _draw_bar(self, current, logs, now, finalize):
        if self.target is None:                     # unknown length: counter, elapsed time, values
            tail = f" {format_step_time(self._step_time(current, now), self.unit)}{format_logs(logs)}"
            line = f"{self._counter(current)} {now - self.start:.0f}s{tail}"
            self._write(("\r" + line) if self.dynamic else line + "\n")
            return
        filled = int(BAR_WIDTH * current / self.target) if self.target else BAR_WIDTH
        seconds = now - self.start if finalize else self._step_time(current, now) * (self.target - current)
        clock = f"{seconds:.0f}s" if finalize else format_eta(seconds)
        tail = f" {format_step_time(self._step_time(current, now), self.unit)}{format_logs(logs)}"
        if self.dynamic:
            line = (f"\x1b[1m{self._counter(current)}\x1b[0m \x1b[32m{BAR_CHAR * filled}\x1b[0m"
                    f"\x1b[37m{BAR_CHAR * (BAR_WIDTH - filled)}\x1b[0m \x1b[1m{clock}\x1b[0m{tail}")
            width = len(self._counter(current)) + 1 + BAR_WIDTH + 1 + len(clock) + len(tail)
            padding = " " * max(0, self.previous_width - width)
            self.previous_width = width
            self._write("\r" + line + padding + ("\n" if finalize else ""))
        else:
            self._write(f"{self._counter(current)} {BAR_CHAR * BAR_WIDTH} {clock}{tail}\n")

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()
