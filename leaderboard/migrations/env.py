"""Alembic's entry point: runs the migrations on the connection ``engine.migrate`` hands over.

There is no ``alembic.ini`` and no URL here: the service opens the database (SQLite or PostgreSQL),
takes its lock, and passes the open connection in ``config.attributes["connection"]``.
"""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
