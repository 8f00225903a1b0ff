"""The running server: the service container, background tasks, operations endpoints, serving."""
