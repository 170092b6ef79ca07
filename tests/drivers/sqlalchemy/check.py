"""The driver-matrix steps through SQLAlchemy's ORM over PyMySQL.

Each unit of work commits on its own: under the proxy's default transactions = "single" a
transaction writes to one shard, and the rows of step 3 span both.
"""

import sys
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))
import pymysql  # noqa: E402
import sqlalchemy  # noqa: E402
from dbapi_checks import (  # noqa: E402
    AI_TABLE,
    ENV,
    IDS,
    TABLE,
    CheckFailed,
    Steps,
    eventually,
    expect,
    finish,
    lag_note,
    row_for,
)
from sqlalchemy import BigInteger, Integer, String, create_engine, func, select, text  # noqa: E402
from sqlalchemy.exc import IntegrityError  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column  # noqa: E402


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = TABLE
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(64), nullable=True)
    n: Mapped[int] = mapped_column(Integer, nullable=True)


class Ai(Base):
    __tablename__ = AI_TABLE
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    v: Mapped[int] = mapped_column(Integer, nullable=True)


URL = "mysql+pymysql://{SG_USER}:{SG_PASS}@{SG_HOST}:{SG_PORT}/{SG_DB}".format(**ENV)
state: dict = {}


def engine():
    if "engine" not in state:
        raise CheckFailed("no engine (step 1 failed)")
    return state["engine"]


def connect():
    e = create_engine(URL, connect_args={"connect_timeout": 10, "read_timeout": 30})
    with e.connect() as c:  # the first connection runs the dialect's initialisation queries
        expect(c.scalar(text("SELECT 1")), 1, "SELECT 1")
    state["engine"] = e
    return f"dialect {e.dialect.name}+{e.dialect.driver}, is_mariadb={e.dialect.is_mariadb}"


def server_version():
    e = engine()
    with e.connect() as c:
        handshake = c.connection.dbapi_connection.get_server_info()
        selected = c.scalar(text("SELECT VERSION()"))
    if not handshake.endswith("-shardgate"):
        raise CheckFailed(f"handshake version {handshake!r} does not end with -shardgate")
    return f"{handshake}, server_version_info={e.dialect.server_version_info} (SELECT VERSION(): {selected})"


def insert():
    e = engine()
    Base.metadata.drop_all(e)
    Base.metadata.create_all(e)
    for i in IDS[:10]:  # plain text SQL
        with Session(e) as s:
            s.execute(text("INSERT INTO %s (id, name, n) VALUES (%d, '%s', %d)" % ((TABLE,) + row_for(i))))
            s.commit()
    for i in IDS[10:]:  # ORM objects (parameterised INSERT)
        with Session(e) as s:
            s.add(Row(id=i, name=f"name{i}", n=i * 10))
            s.commit()
    return f"drop_all/create_all, {len(IDS)} rows (10 text, 10 ORM)"


def read():
    with Session(engine()) as s:
        waited = eventually(lambda: expect(s.scalar(select(func.count()).select_from(Row)), len(IDS), "count()"))
        for i in IDS:
            r = s.get(Row, i)
            expect((r.id, r.name, r.n) if r else None, row_for(i), f"session.get(Row, {i})")
        expect(s.scalars(select(Row.id).order_by(Row.id).limit(5)).all(), [1, 2, 3, 4, 5], "order_by(id).limit(5)")
        agg = s.execute(select(func.sum(Row.n), func.min(Row.id), func.max(Row.id), func.avg(Row.n))).one()
        expect((int(agg[0]), agg[1], agg[2], float(agg[3])), (2100, 1, 20, 105.0), "sum/min/max/avg")
        expect(s.scalar(select(func.count()).select_from(Row).where(Row.n > 100)), 10, "count() where n > 100")
    return "count, 20 session.get, order_by/limit, sum/min/max/avg" + lag_note(waited)


def transactions():
    e = engine()
    with Session(e) as s:
        s.add(Row(id=101, name="name101", n=1010))
        s.commit()
    with Session(e) as s:
        # Each autobegun transaction reads on the primary (PyMySQL runs with autocommit off).
        waited = eventually(lambda: expect(s.get(Row, 101, populate_existing=True) is not None, True, "row 101"))
    with Session(e) as s:
        s.add(Row(id=102, name="name102", n=1020))
        s.flush()
        expect(s.scalar(select(func.count()).select_from(Row).where(Row.id == 102)), 1, "row 102 in its transaction")
        s.rollback()
    with Session(e) as s:
        expect(s.get(Row, 102), None, "row 102 after rollback")
    return "commit visible, rollback not visible" + lag_note(waited)


def last_insert_id():
    ids = []
    with Session(engine()) as s:
        for v in (1, 2):
            obj = Ai(v=v)
            s.add(obj)
            s.flush()
            expect(obj.id, s.scalar(text("SELECT LAST_INSERT_ID()")), "Ai.id vs SELECT LAST_INSERT_ID()")
            ids.append(obj.id)
        s.commit()
    expect(ids, [1, 2], "ids")
    return f"ORM primary key = LAST_INSERT_ID() = {ids}"


def duplicate():
    with Session(engine()) as s:
        s.add(Row(id=1, name="again", n=0))
        try:
            s.commit()
        except IntegrityError as e:
            code = e.orig.args[0] if isinstance(e.orig, pymysql.err.MySQLError) else None
            expect(code, 1062, "error number")
            return f"IntegrityError {code}"
    raise CheckFailed("duplicate INSERT succeeded")


def reconnect():
    e = engine()
    e.dispose()
    with e.connect() as c:
        expect(c.scalar(text("SELECT 1")), 1, "SELECT 1")
    return "engine.dispose(), connected again, SELECT 1"


st = Steps("")
st.run(1, "connect", connect)
st.run(2, "server_version", server_version)
st.run(3, "insert", insert)
st.run(4, "read", read)
st.run(5, "transactions", transactions)
st.run(6, "last_insert_id", last_insert_id)
st.run(7, "duplicate_key", duplicate)
st.run(8, "reconnect", reconnect)
sys.exit(finish("sqlalchemy", f"{sqlalchemy.__version__}(PyMySQL-{version('PyMySQL')})", st.ok))
