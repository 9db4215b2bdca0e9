"""The SQL console: what a trainee types, run in their database as its own login.

:mod:`~dbwrapper.console.statements` splits the text into statements the way the
engine's own client does; :mod:`~dbwrapper.console.results` holds what each
statement gave and writes it as CSV; :mod:`~dbwrapper.console.service` runs
them with the console's limits, keeps the history and cancels; each engine's
quirks (fetching a capped result, its session's id, cancelling it) are its
backend's ``console`` part (``dbwrapper/backends/*/console.py``).
"""
