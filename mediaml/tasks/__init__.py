"""One module per task; each defines a `mediaml.tasks.base.Task` subclass named in conf/task/<name>.yaml."""
