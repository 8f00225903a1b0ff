"""The pages people use: sign-in, their personal clients, and device approval.

A front door like ``api/`` and ``cli/``: it parses forms into the domain's
typed values, calls the use cases (``PeopleService``, ``CredentialService``)
in worker threads, and renders their answers and errors as HTML. Modules:
``sessions`` (who is signed in: cookie, CSRF, return-to, the new secret's
hand-over), ``login`` (how they sign in: password and invitation pages),
``personal_clients`` (list, create, delete), ``access`` (signed-in-only pages,
errors as pages), ``forms``, ``render`` (templates, security headers, error
pages), ``routes``.
"""
