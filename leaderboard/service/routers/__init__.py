"""The service's routes, one module per audience: ``api`` (programs, JSON) and ``site`` (browsers, HTML)."""
