import sys
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))
import pymysql  # noqa: E402
from dbapi_checks import Driver, connect_args, finish, run_steps  # noqa: E402


def connect():
    return pymysql.connect(**connect_args(), autocommit=True, connect_timeout=10, read_timeout=30)


ok = run_steps(Driver(connect=connect, prepared_cursor=lambda c: c.cursor()))
sys.exit(finish("pymysql", version("PyMySQL"), ok))
