"""The leaderboard as a service: teams submit over HTTP, workers score off the request path.

``settings`` (the one settings object and the phases), ``database`` (every statement the service
runs, on SQLite or PostgreSQL; the tables are ``mosxav_leaderboard.tables``), ``accounts`` (token
and team-name rules), ``dependencies`` (what routes ``Depends`` on), ``routers`` (``api``: JSON;
``site``: pages), ``models`` (the API's bodies), ``pages`` (HTML), ``board_view`` (the public table,
one row per team, cached), ``uploads`` (bodies streamed to disk under a cap, multipart parsed from
disk), ``worker`` (scoring processes; a model submission is first run by
``mosxav_leaderboard.model_runs``), ``app`` (the ASGI app and its middleware), ``server``
(``mosxav-bench serve``), ``client`` (``mosxav-bench submit --server``).
"""
