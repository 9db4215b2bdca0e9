"""dbwrapper: one real database per trainee, on PostgreSQL or MySQL/MariaDB.

The layers, from the outside in:

* :mod:`dbwrapper.web` and :mod:`dbwrapper.cli` speak HTTP and the command line;
* :mod:`dbwrapper.service` holds what the service does, with no HTTP in it;
* :mod:`dbwrapper.backends` holds one class per database engine and its quirks;
* :mod:`dbwrapper.servers` owns the SQLAlchemy engines for the life of the process.
"""

__version__ = "0.1.0"
