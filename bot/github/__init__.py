"""GitHub: the client, candidate issues, comments and permissions (PyGithub)."""
