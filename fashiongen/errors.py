"""The errors FashionGen raises for things a user can fix; each message says what is wrong and what to do.

(Unusable images raise `fashiongen.imaging.ImageError`.)
"""


class DatasetError(ValueError):
    """A dataset file or folder that cannot be used; the message says what is wrong and where."""


class TrainingError(RuntimeError):
    """A training run that cannot start as asked; the message says what to do instead."""


class ModelFolderError(RuntimeError):
    """A model folder that cannot be loaded; the message names the file and the command that rebuilds it."""


class ClassifierError(ModelFolderError):
    """A labeler that cannot be built or loaded; the message names the file and the fix."""


class GeneratorError(ModelFolderError):
    """A generator that cannot be loaded or asked for; the message names the file or valid names."""
