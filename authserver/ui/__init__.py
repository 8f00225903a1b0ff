"""The pages people use: sign-in and their personal clients (SPEC section 8).

A front door like ``api/`` and ``cli.py``: it parses forms into the domain's
typed values, calls the use cases (``PeopleService``, ``CredentialService``)
in worker threads, and renders their answers and errors as HTML. Modules:
``sessions`` (who is signed in: cookie, CSRF, return-to), ``login`` (how they
sign in: password and invitation pages), ``personal_clients`` (list, create,
delete), ``render`` (templates, security headers, error pages), ``routes``.
"""
