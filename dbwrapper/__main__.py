"""Allow ``python -m dbwrapper``, the same as the ``dbwrapper`` console script."""

from dbwrapper.cli import main

raise SystemExit(main())
