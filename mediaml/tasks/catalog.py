"""task=catalog: not implemented yet; its issue adds the runner. The config tree is already final."""
from mediaml.tasks.base import NotImplementedTask


class CatalogTask(NotImplementedTask):
    issue = "see the open issue 'task=catalog'"
