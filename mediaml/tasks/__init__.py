"""One package per task (``mediaml.tasks.<name>``), each with a ``task.py`` that defines the
`mediaml.tasks.base.Task` subclass named in conf/task/<name>.yaml. A task package imports the shared
layer (``mediaml.run``, ``mediaml.tasks.base``, ``mediaml.tracking``, ``mediaml.errors``, ``mediaml.config``,
``mediaml.plotting``) and never another task package."""
