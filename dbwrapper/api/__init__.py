"""The JSON API at ``/api/v1/``: the same service the pages use, as resources.

A request is read into a :class:`~dbwrapper.api.routing.Call` (who, what, with
which body and preconditions), answered by a resource's handler with a
:class:`~dbwrapper.api.routing.Reply`, and written out by the CherryPy
controller in :mod:`dbwrapper.web.api`. Nothing between those two knows about
HTTP servers, so a batch (:mod:`dbwrapper.api.batch`) answers its operations
through the very same path. Handlers hold no SQL and no rules of their own:
what a user may do is the service's to say.
"""
