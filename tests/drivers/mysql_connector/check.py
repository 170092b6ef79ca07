import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))
# The wheel's C extension links the OpenSSL it vendors (3.2+). Once Python's ssl module has
# loaded Debian 12's libssl.so.3 (3.0), that soname is taken and the extension fails with
# "version `OPENSSL_3.2.0' not found" (mysql.connector.HAVE_CEXT is then False): load the
# extension first, as an application would have to.
try:
    import _mysql_connector  # noqa: F401
    CEXT_ERROR = None
except ImportError as e:
    CEXT_ERROR = str(e)
import mysql.connector  # noqa: E402
from dbapi_checks import CheckFailed, Driver, connect_args, finish, run_steps  # noqa: E402


def connector(use_pure: bool):
    def connect():
        if not use_pure and not mysql.connector.HAVE_CEXT:
            raise CheckFailed(f"the C extension (_mysql_connector) cannot be loaded: {CEXT_ERROR}")
        return mysql.connector.connect(
            **connect_args(), use_pure=use_pure, autocommit=True, connection_timeout=10
        )

    return connect


ok = True
for mode, use_pure in (("pure", True), ("cext", False)):
    drv = Driver(
        connect=connector(use_pure),
        prepared_cursor=lambda c: c.cursor(prepared=True),
        placeholder="?",
        suffix=f"/{mode}",
    )
    ok = run_steps(drv) and ok

version = mysql.connector.__version__
version += "(pure+C-ext)" if mysql.connector.HAVE_CEXT else "(pure,no-C-ext)"
sys.exit(finish("mysql_connector", version, ok))
