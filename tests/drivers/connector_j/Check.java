// Driver check: MariaDB Connector/J (JDBC) through shardgate, with server-side prepared statements
// (useServerPrepStmts=true). Prints `STEP <n> <name> ok|fail <detail>` per step and
// `DRIVER connector_j <version> ok|fail` last; exits 0 iff every step passed.
// Reads SG_HOST, SG_PORT, SG_USER, SG_PASS, SG_DB, SG_TABLE, SG_AI_TABLE from the environment.
//
// Reads outside a transaction go to a replica, which applies the primary's writes asynchronously:
// checks that follow writes wait for them (`eventually`, at most 5 s) and say how long that took;
// checks that a row is absent read inside a transaction, which shardgate sends to the primary.

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

public final class Check {
    interface Step {
        String run() throws Exception;
    }

    interface Probe {
        void run() throws Exception;
    }

    /** A check that did not hold; its message is the step's detail. */
    static final class Fail extends Exception {
        private static final long serialVersionUID = 1L;

        Fail(String message) {
            super(message);
        }
    }

    static final String HOST = env("SG_HOST");
    static final String PORT = env("SG_PORT");
    static final String DB = env("SG_DB");
    static final String T = env("SG_TABLE");
    static final String AI = env("SG_AI_TABLE");

    static Connection conn;
    static boolean allOk = true;

    public static void main(String[] args) {
        step(1, "connect", () -> {
            conn = connect();
            return "autocommit=" + conn.getAutoCommit();
        });
        step(2, "server_version", Check::serverVersion);
        step(3, "insert", Check::createInsert);
        step(4, "read", Check::read);
        step(5, "transactions", Check::transactions);
        step(6, "last_insert_id", Check::lastInsertId);
        step(7, "duplicate_key", Check::duplicateKey);
        step(8, "reconnect", Check::reconnect);
        try {
            if (conn != null) conn.close();
        } catch (SQLException ignored) {
            // The steps have reported; a failing close changes nothing.
        }
        String version = org.mariadb.jdbc.internal.util.constant.Version.version;
        System.out.println("DRIVER connector_j " + version + (allOk ? " ok" : " fail"));
        System.exit(allOk ? 0 : 1);
    }

    static void step(int n, String name, Step s) {
        String result;
        try {
            result = "ok " + s.run();
        } catch (SQLException e) {
            allOk = false;
            result = "fail " + describe(e);
        } catch (Fail e) {
            allOk = false;
            result = "fail " + e.getMessage();
        } catch (Throwable e) {
            allOk = false;
            result = "fail " + e;
        }
        System.out.println("STEP " + n + " " + name + " " + result.replaceAll("\\s+", " "));
        System.out.flush();
    }

    static String env(String name) {
        String v = System.getenv(name);
        if (v == null || v.isEmpty()) throw new IllegalStateException(name + " is not set");
        return v;
    }

    static Connection connect() throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", env("SG_USER"));
        p.setProperty("password", env("SG_PASS"));
        p.setProperty("useServerPrepStmts", "true");
        p.setProperty("connectTimeout", "10000");
        p.setProperty("socketTimeout", "30000");
        return DriverManager.getConnection("jdbc:mariadb://" + HOST + ":" + PORT + "/" + DB, p);
    }

    static Connection conn() throws Fail {
        if (conn == null) throw new Fail("no connection (connect failed)");
        return conn;
    }

    static String describe(SQLException e) {
        return "SQLException error " + e.getErrorCode() + " sqlstate " + e.getSQLState() + ": " + e.getMessage();
    }

    static void expect(boolean cond, String what) throws Fail {
        if (!cond) throw new Fail(what);
    }

    /** Runs probe until it stops failing a check, for at most 5 s; the milliseconds waited (0: none). */
    static long eventually(Probe probe) throws Exception {
        long t0 = System.nanoTime();
        for (int tries = 0; ; tries++) {
            try {
                probe.run();
                return tries == 0 ? 0 : Math.max(1, (System.nanoTime() - t0) / 1_000_000);
            } catch (Fail e) {
                if (System.nanoTime() - t0 > 5_000_000_000L) throw e;
                Thread.sleep(10);
            }
        }
    }

    static String lagNote(long ms) {
        return ms > 0 ? " (replicas caught up after " + ms + " ms)" : "";
    }

    static long scalar(String sql) throws Exception {
        try (Statement st = conn().createStatement(); ResultSet rs = st.executeQuery(sql)) {
            expect(rs.next(), sql + ": no row");
            long v = rs.getLong(1);
            expect(!rs.wasNull(), sql + ": NULL");
            expect(!rs.next(), sql + ": more than one row");
            return v;
        }
    }

    static String serverVersion() throws Exception {
        DatabaseMetaData md = conn().getMetaData();
        String version = md.getDatabaseProductVersion();
        String product = md.getDatabaseProductName();
        // Asked of the server by the driver itself (SELECT @@tx_isolation on MariaDB).
        int isolation = conn().getTransactionIsolation();
        expect(version.endsWith("-shardgate"), "server version '" + version + "' does not end with -shardgate");
        return "version=" + version + " product=" + product + " isolation=" + isolation;
    }

    static String createInsert() throws Exception {
        Connection c = conn();
        try (Statement st = c.createStatement()) {
            st.execute("DROP TABLE IF EXISTS " + T);
            st.execute("CREATE TABLE " + T + " (id BIGINT PRIMARY KEY, name VARCHAR(64), n INT)");
            StringBuilder sql = new StringBuilder("INSERT INTO " + T + " (id, name, n) VALUES ");
            for (int id = 1; id <= 10; id++) {
                sql.append(id == 1 ? "" : ", ").append("(").append(id).append(", 'name-").append(id)
                        .append("', ").append(id * 10).append(")");
            }
            int rows = st.executeUpdate(sql.toString());
            expect(rows == 10, "plain INSERT of ids 1..10 reported " + rows + " rows, expected 10");
        }
        String kind;
        int batched = 0;
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + T + " (id, name, n) VALUES (?, ?, ?)")) {
            kind = ps.getClass().getSimpleName();
            expect(kind.startsWith("ServerSide"), "prepareStatement gave a " + kind + ", not a server-side one");
            for (int id = 11; id <= 15; id++) {
                ps.setLong(1, id);
                ps.setString(2, "name-" + id);
                ps.setInt(3, id * 10);
                int rows = ps.executeUpdate();
                expect(rows == 1, "prepared INSERT of id " + id + " reported " + rows + " rows");
            }
            for (int id = 16; id <= 20; id++) {
                ps.setLong(1, id);
                ps.setString(2, "name-" + id);
                ps.setInt(3, id * 10);
                ps.addBatch();
            }
            for (int r : ps.executeBatch()) {
                expect(r == 1 || r == Statement.SUCCESS_NO_INFO, "prepared batch INSERT of ids 16..20 reported " + r);
                batched++;
            }
        }
        expect(batched == 5, "prepared batch INSERT of ids 16..20 gave " + batched + " results, expected 5");
        return "ids 1..10 by query, 11..15 by " + kind + ".executeUpdate, 16..20 by executeBatch";
    }

    static String read() throws Exception {
        Connection c = conn();
        long waited = eventually(() -> {
            long count = scalar("SELECT COUNT(*) FROM " + T);
            expect(count == 20, "SELECT COUNT(*) gave " + count + ", expected 20");
        });
        try (PreparedStatement ps = c.prepareStatement("SELECT id, name, n FROM " + T + " WHERE id = ?")) {
            for (int id = 1; id <= 20; id++) {
                ps.setLong(1, id);
                try (ResultSet rs = ps.executeQuery()) {
                    expect(rs.next(), "prepared SELECT WHERE id = " + id + ": no row");
                    String got = rs.getLong(1) + "," + rs.getString(2) + "," + rs.getInt(3);
                    String want = id + ",name-" + id + "," + id * 10;
                    expect(got.equals(want), "prepared SELECT WHERE id = " + id + ": got " + got + ", expected " + want);
                    expect(!rs.next(), "prepared SELECT WHERE id = " + id + ": more than one row");
                }
            }
        }
        List<Long> ids = new ArrayList<>();
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT id FROM " + T + " ORDER BY id LIMIT 5")) {
            while (rs.next()) ids.add(rs.getLong(1));
        }
        expect(ids.equals(List.of(1L, 2L, 3L, 4L, 5L)), "SELECT id ORDER BY id LIMIT 5 gave " + ids + ", expected [1, 2, 3, 4, 5]");
        long sum = scalar("SELECT SUM(n) FROM " + T);
        expect(sum == 2100, "SELECT SUM(n) gave " + sum + ", expected 2100");
        List<Long> top = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement("SELECT id FROM " + T + " WHERE n >= ? ORDER BY id DESC LIMIT 3")) {
            ps.setInt(1, 50);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) top.add(rs.getLong(1));
            }
        }
        expect(top.equals(List.of(20L, 19L, 18L)), "prepared SELECT id WHERE n >= 50 ORDER BY id DESC LIMIT 3 gave " + top + ", expected [20, 19, 18]");
        return "20 rows by key (prepared), COUNT(*)=20, first ids " + ids + ", SUM(n)=2100, prepared scatter top 3 " + top + lagNote(waited);
    }

    /** The row with key `id`, as "name,n", or null. */
    static String rowById(long id) throws Exception {
        try (PreparedStatement ps = conn().prepareStatement("SELECT name, n FROM " + T + " WHERE id = ?")) {
            ps.setLong(1, id);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getString(1) + "," + rs.getInt(2) : null;
            }
        }
    }

    static void insertRow(long id, String name, int n) throws Exception {
        try (PreparedStatement ps = conn().prepareStatement("INSERT INTO " + T + " (id, name, n) VALUES (?, ?, ?)")) {
            ps.setLong(1, id);
            ps.setString(2, name);
            ps.setInt(3, n);
            ps.executeUpdate();
        }
    }

    static String transactions() throws Exception {
        Connection c = conn();
        long waited;
        try {
            c.setAutoCommit(false);
            insertRow(101, "committed", 1);
            expect("committed,1".equals(rowById(101)), "id 101 not visible inside its own transaction");
            c.commit();
            c.setAutoCommit(true);
            waited = eventually(() -> {
                String after = rowById(101);
                expect("committed,1".equals(after), "id 101 after COMMIT: got " + after + ", expected committed,1");
            });

            c.setAutoCommit(false);
            insertRow(102, "rolled-back", 2);
            expect(rowById(102) != null, "id 102 not visible inside its own transaction");
            c.rollback();
            // Read inside a transaction, on the primary: a lagging replica cannot hide the row.
            String gone = rowById(102);
            expect(gone == null, "id 102 after ROLLBACK: got " + gone + ", expected no row");
            c.commit();
            c.setAutoCommit(true);
        } finally {
            try {
                if (!c.getAutoCommit()) {
                    c.rollback();
                    c.setAutoCommit(true);
                }
            } catch (SQLException ignored) {
                // Already reported by the step.
            }
        }
        return "setAutoCommit(false)+commit: id 101 visible; setAutoCommit(false)+rollback: id 102 absent" + lagNote(waited);
    }

    static long generatedKey(Statement st) throws Exception {
        try (ResultSet keys = st.getGeneratedKeys()) {
            expect(keys.next(), "getGeneratedKeys() gave no row");
            return keys.getLong(1);
        }
    }

    static String lastInsertId() throws Exception {
        Connection c = conn();
        long plain;
        try (Statement st = c.createStatement()) {
            st.execute("DROP TABLE IF EXISTS " + AI);
            st.execute("CREATE TABLE " + AI + " (id INT AUTO_INCREMENT PRIMARY KEY, v INT)");
            st.executeUpdate("INSERT INTO " + AI + " (v) VALUES (1)", Statement.RETURN_GENERATED_KEYS);
            plain = generatedKey(st);
        }
        long lii = scalar("SELECT LAST_INSERT_ID()");
        expect(plain == lii, "plain INSERT: generated key " + plain + " but SELECT LAST_INSERT_ID() = " + lii);
        long prepared;
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + AI + " (v) VALUES (?)", Statement.RETURN_GENERATED_KEYS)) {
            ps.setInt(1, 2);
            ps.executeUpdate();
            prepared = generatedKey(ps);
        }
        long lii2 = scalar("SELECT LAST_INSERT_ID()");
        expect(prepared == lii2, "prepared INSERT: generated key " + prepared + " but SELECT LAST_INSERT_ID() = " + lii2);
        expect(prepared > plain, "prepared INSERT: generated key " + prepared + " not above the first " + plain);
        return "generated keys " + plain + " (query), " + prepared + " (prepared) = LAST_INSERT_ID()";
    }

    static String duplicateKey() throws Exception {
        Connection c = conn();
        List<String> seen = new ArrayList<>();
        try (Statement st = c.createStatement()) {
            try {
                st.executeUpdate("INSERT INTO " + T + " (id, name, n) VALUES (1, 'dup', 0)");
                throw new Fail("plain INSERT of duplicate id 1 succeeded");
            } catch (SQLException e) {
                expect(e.getErrorCode() == 1062, "plain INSERT of duplicate id 1: " + describe(e) + ", expected error 1062");
                seen.add("query: " + e.getClass().getSimpleName() + " " + e.getErrorCode() + "/" + e.getSQLState());
            }
        }
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + T + " (id, name, n) VALUES (?, ?, ?)")) {
            ps.setLong(1, 2);
            ps.setString(2, "dup");
            ps.setInt(3, 0);
            ps.executeUpdate();
            throw new Fail("prepared INSERT of duplicate id 2 succeeded");
        } catch (SQLException e) {
            expect(e.getErrorCode() == 1062, "prepared INSERT of duplicate id 2: " + describe(e) + ", expected error 1062");
            seen.add("prepared: " + e.getClass().getSimpleName() + " " + e.getErrorCode() + "/" + e.getSQLState());
        }
        expect(scalar("SELECT 1") == 1, "SELECT 1 after the errors did not give 1");
        return String.join(", ", seen) + "; connection still usable";
    }

    static String reconnect() throws Exception {
        if (conn != null) {
            conn.close();
            conn = null;
        }
        conn = connect();
        expect(conn.isValid(5), "isValid (COM_PING) on the new connection gave false");
        long one = scalar("SELECT 1");
        expect(one == 1, "SELECT 1 gave " + one);
        return "closed, connected again, ping and SELECT 1 ok";
    }
}
