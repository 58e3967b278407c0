"""The leaderboard as a service: teams submit over HTTP, workers score off the request path.

``accounts`` (teams and API tokens), ``jobs`` (the submission queue as rows, leases, daily limits,
visibility), ``uploads`` (bodies streamed to disk under a cap, multipart parsed from disk), ``worker``
(scoring processes), ``pages`` (server-rendered HTML), ``app`` (the ASGI app and its JSON API),
``server`` (``mosxav-bench serve``), ``client`` (``mosxav-bench submit --server``).
"""
