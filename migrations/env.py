"""Alembic environment: runs against the engine the app (or a test) hands over."""
from alembic import context

import exam.accounts.models  # noqa: F401  (registers tables on the metadata)
import exam.audit.models  # noqa: F401
import exam.grading.models  # noqa: F401
import exam.merit.models  # noqa: F401
import exam.room.models  # noqa: F401
import exam.setup.models  # noqa: F401
import proctor.models  # noqa: F401
import question_bank.models  # noqa: F401
from exam.core.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    """Write the SQL instead of running it (``--sql``): used by the tests to build PostgreSQL schemas fast."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
