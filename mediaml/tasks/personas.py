"""task=personas: not implemented yet; its issue adds the runner. The config tree is already final."""
from mediaml.tasks.base import NotImplementedTask


class PersonasTask(NotImplementedTask):
    issue = "see the open issue 'task=personas'"
