"""The database mode (sqlite or postgresql) and taskfarm's tables and user."""

import os
import sys
import warnings

from .errors import HarnessError

SQLITE_FILE = "taskfarm.db"
DB_MODES = ("sqlite", "postgresql")
# The environment variable that selects the default database mode.
DB_ENV = "TASKFARM_TEST_DB"


def default_db():
    """The database mode when --db is not given: $TASKFARM_TEST_DB, else sqlite."""
    raw = os.environ.get(DB_ENV, "")
    value = raw.strip().lower()
    if not value:
        return "sqlite"
    if value not in DB_MODES:
        raise HarnessError(
            f"{DB_ENV}={raw!r}: must be one of {', '.join(DB_MODES)} "
            "(unset or empty: sqlite)")
    return value


def resolve_db(args):
    """(db mode, database URL or None) for `start`."""
    if args.database_url:
        url = args.database_url
        if args.db == "postgresql" or not url.startswith("sqlite:"):
            raise HarnessError(
                f"--database-url {url!r}: only sqlite URLs can be given; "
                "--db postgresql creates and runs its own PostgreSQL cluster "
                "in the state directory")
        return "sqlite", url
    db = args.db or default_db()
    if db == "sqlite":
        return db, "sqlite:///" + os.path.join(
            os.path.abspath(args.state_dir), SQLITE_FILE)
    return db, None


PASSWORD_ROUNDS_VAR = "TASKFARM_TEST_PASSWORD_ROUNDS"


def password_hash(user_model, password):
    """The user's password hash, as the server's own `hash_password` makes it
    (passlib's sha512_crypt at 656,000 rounds: a check costs the server about
    0.25 CPU seconds), or with $TASKFARM_TEST_PASSWORD_ROUNDS rounds (1,000
    to 999,999,999) when set: `make test` sets 1,000, as thousands of password
    checks at full cost were a large share of its CPU. The server verifies
    either the same way (the rounds are part of the hash); the benchmarks,
    which measure the server's cost of a password check, run without it."""
    rounds = os.environ.get(PASSWORD_ROUNDS_VAR)
    if rounds is None:
        user_model.hash_password(password)
        return
    if not rounds.isdigit() or not 1000 <= int(rounds) <= 999_999_999:
        raise HarnessError(
            f"{PASSWORD_ROUNDS_VAR}={rounds!r} is not a number of rounds "
            "(1000 to 999999999)")
    from passlib.hash import sha512_crypt
    user_model.password_hash = sha512_crypt.using(rounds=int(rounds)).hash(password)


def init_database(database_url, user, password):
    """Create the tables and the user (or update its password); idempotent.

    Done in this process: taskfarm reads DATABASE_URL when it is imported."""
    os.environ["DATABASE_URL"] = database_url
    with warnings.catch_warnings():
        # authlib.jose and crypt deprecation warnings from taskfarm's imports.
        # authlib.deprecate installs an "always" filter when imported: import
        # it first so that the "ignore" filter below comes before it.
        try:
            import authlib.deprecate  # noqa: F401
        except ImportError:
            pass
        warnings.simplefilter("ignore")
        try:
            from taskfarm import app, db
            from taskfarm.models import User
            if database_url.startswith("postgresql"):
                import gunicorn  # noqa: F401
                import psycopg2  # noqa: F401
        except ImportError as e:
            raise HarnessError(
                f"cannot import taskfarm (or psycopg2/gunicorn) with "
                f"{sys.executable} ({e}): run this script with the python of "
                "the harness venv (tests/harness/venv.sh prints its path and "
                "rebuilds it when tests/harness/requirements.txt changed)") from e
        if app.config["SQLALCHEMY_DATABASE_URI"] != database_url:
            raise HarnessError(
                "taskfarm was imported with another DATABASE_URL "
                f"({app.config['SQLALCHEMY_DATABASE_URI']!r})")
        with app.app_context():
            db.create_all()
            u = User.query.filter_by(username=user).first()
            if u is None:
                u = User(username=user)
                password_hash(u, password)
                db.session.add(u)
                db.session.commit()
            elif not u.verify_password(password):
                password_hash(u, password)
                db.session.commit()
            db.session.remove()
            db.engine.dispose()
