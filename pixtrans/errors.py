"""Errors users see: each names the file or key and says what to do."""


class PixtransError(Exception):
    """Base class of every error pixtrans raises on purpose (the CLI prints these without a traceback)."""


class ConfigError(PixtransError):
    """A config key is unknown, has the wrong type, or holds an invalid value."""


class DataError(PixtransError):
    """An input file is unreadable, has the wrong mode or size, lacks a partner, or holds out-of-range labels."""

    def __init__(self, path, problem: str = "", hint: str = ""):
        self.path, self.problem, self.hint = str(path), problem, hint
        super().__init__(f"{path}: {problem}" + (f" — {hint}" if hint else ""))

    def __reduce__(self):  # survives the trip back from DataLoader worker processes
        return type(self), (self.path, self.problem, self.hint)


class CheckpointError(PixtransError):
    """A checkpoint or weights file is missing, incomplete, or does not fit the model."""


class WeightsMissingError(PixtransError):
    """Pretrained weights (e.g. VGG19) are needed but were not provided."""
