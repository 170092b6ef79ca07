import sys
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))
import MySQLdb  # noqa: E402
from dbapi_checks import Driver, connect_args, finish, run_steps  # noqa: E402


def connect():
    return MySQLdb.connect(**connect_args(), autocommit=True, connect_timeout=10, read_timeout=30)


ok = run_steps(Driver(connect=connect, prepared_cursor=lambda c: c.cursor()))
client = MySQLdb._mysql.get_client_info()
sys.exit(finish("mysqlclient", f"{version('mysqlclient')}(libmariadb-{client})", ok))
