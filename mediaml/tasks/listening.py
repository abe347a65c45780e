"""task=listening: not implemented yet; its issue adds the runner. The config tree is already final."""
from mediaml.tasks.base import NotImplementedTask


class ListeningTask(NotImplementedTask):
    issue = "see the open issue 'task=listening'"
