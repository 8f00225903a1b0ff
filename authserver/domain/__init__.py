"""Domain rules shared by the OAuth endpoints, the management API and the CLI."""
