//! End-to-end session behaviour through shardgate: transactions, session
//! state replay, pinning, prepared statements routed by bound values.

mod support;

use mysql_async::prelude::Queryable;
use support::fixtures::*;
use support::proxy::{err_code, rows, unique, Proxy};
use support::Cluster;

#[tokio::test]
async fn transactions_commit_roll_back_and_stay_on_one_shard() {
    let t = unique("tx");
    let (cluster, proxy, mut c) = setup(&t).await;
    let (a, b) = keys_on_two_shards(&proxy, &t);
    let sa = &cluster.shards()[owner(&proxy, &t, a)];
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop(format!("INSERT INTO {t} VALUES ({a}, 'a')")).await.unwrap();
    assert_eq!(count_on(sa.primary, &t, ""), 0, "not visible before COMMIT");
    // A read of another shard inside the transaction is fine; a write there is refused.
    rows(&mut c, &format!("SELECT * FROM {t} WHERE user_id = {b}")).await;
    let (code, msg) = err_code(&mut c, &format!("INSERT INTO {t} VALUES ({b}, 'b')")).await;
    assert_eq!(code, 1235, "{msg}");
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(count_on(sa.primary, &t, ""), 1);

    c.query_drop("START TRANSACTION").await.unwrap();
    c.query_drop(format!("UPDATE {t} SET name = 'changed' WHERE user_id = {a}")).await.unwrap();
    c.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(count_on(sa.primary, &t, "WHERE name = 'a'"), 1, "rolled back");

    // autocommit=0 is a transaction too.
    c.query_drop("SET autocommit = 0").await.unwrap();
    c.query_drop(format!("INSERT INTO {t} VALUES ({}, 'x')", a + 1000)).await.unwrap();
    c.query_drop("ROLLBACK").await.unwrap();
    c.query_drop("SET autocommit = 1").await.unwrap();
    let s = &cluster.shards()[owner(&proxy, &t, a + 1000)];
    assert_eq!(count_on(s.primary, &t, &format!("WHERE user_id = {}", a + 1000)), 0);

    // Savepoints.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop(format!("INSERT INTO {t} VALUES ({}, 'kept')", a + 2000)).await.unwrap();
    c.query_drop("SAVEPOINT sp1").await.unwrap();
    c.query_drop(format!("UPDATE {t} SET name = 'lost' WHERE user_id = {}", a + 2000)).await.unwrap();
    c.query_drop("ROLLBACK TO SAVEPOINT sp1").await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    let s = &cluster.shards()[owner(&proxy, &t, a + 2000)];
    assert_eq!(count_on(s.primary, &t, "WHERE name = 'kept'"), 1);
}

#[tokio::test]
async fn session_variables_follow_the_session_to_every_backend() {
    let cluster = Cluster::shared();
    let proxy = Proxy::start(&cluster.shardgate_config(""));
    let mut c = proxy.conn().await;
    c.query_drop("SET time_zone = '+05:00', @@session.sql_mode = 'ANSI_QUOTES', @answer = 42").await.unwrap();
    c.query_drop("SET NAMES latin1").await.unwrap();
    for shard in ["s0", "s1"] {
        for hint in ["", "/* shardgate:primary */"] {
            let r = rows(&mut c, &format!("SELECT {hint} /* shardgate:shard={shard} */ @@time_zone, @@sql_mode, @@character_set_client, @@port")).await;
            assert_eq!(r[0][0].as_deref(), Some("+05:00"), "{shard} {hint}");
            assert_eq!(r[0][1].as_deref(), Some("ANSI_QUOTES"));
            assert_eq!(r[0][2].as_deref(), Some("latin1"));
        }
    }
    // Expression values are evaluated once and replayed as literals.
    c.query_drop("SET @@session.group_concat_max_len = 1000 + 24").await.unwrap();
    let r = rows(&mut c, "SELECT /* shardgate:shard=s1 */ @@group_concat_max_len").await;
    assert_eq!(r[0][0].as_deref(), Some("1024"));
    // A bad SET is the server's own error, and changes nothing.
    let (code, _) = err_code(&mut c, "SET time_zone = 'Not/AZone'").await;
    assert_eq!(code, 1298);
    let r = rows(&mut c, "SELECT /* shardgate:shard=s1 */ @@time_zone").await;
    assert_eq!(r[0][0].as_deref(), Some("+05:00"));
    // Another client does not inherit this state from the pool.
    let mut other = proxy.conn().await;
    for shard in ["s0", "s1"] {
        let r = rows(&mut other, &format!("SELECT /* shardgate:shard={shard} */ @@time_zone, @@character_set_client"))
            .await;
        assert_eq!(r[0][0].as_deref(), Some("SYSTEM"), "clean state on {shard}");
        assert_ne!(r[0][1].as_deref(), Some("latin1"));
    }
    // COM_RESET_CONNECTION clears it.
    c.reset().await.unwrap();
    let r = rows(&mut c, "SELECT /* shardgate:shard=s1 */ @@time_zone").await;
    assert_eq!(r[0][0].as_deref(), Some("SYSTEM"));
}

#[tokio::test]
async fn temporary_tables_and_locks_pin_the_session() {
    let cluster = Cluster::shared();
    let proxy = Proxy::start(&cluster.shardgate_config(""));
    let mut c = proxy.conn().await;
    let tmp = unique("tmp");
    c.query_drop(format!("CREATE TEMPORARY TABLE {tmp} (id INT)")).await.unwrap();
    c.query_drop(format!("INSERT INTO {tmp} VALUES (1), (2)")).await.unwrap();
    for _ in 0..5 {
        let r = rows(&mut c, &format!("SELECT COUNT(*) FROM {tmp}")).await;
        assert_eq!(r[0][0].as_deref(), Some("2"), "the temporary table stays visible");
    }
    let lock = unique("lock");
    let r = rows(&mut c, &format!("SELECT GET_LOCK('{lock}', 0)")).await;
    assert_eq!(r[0][0].as_deref(), Some("1"));
    let r = rows(&mut c, &format!("SELECT IS_USED_LOCK('{lock}') = CONNECTION_ID()")).await;
    assert_eq!(r[0][0].as_deref(), Some("1"), "same backend connection holds the lock");
}

#[tokio::test]
async fn prepared_statements_route_by_bound_values() {
    let t = unique("ps");
    let (cluster, proxy, mut c) = setup(&t).await;
    let (a, b) = keys_on_two_shards(&proxy, &t);
    let ins = c.prep(format!("INSERT INTO {t} (user_id, name) VALUES (?, ?)")).await.unwrap();
    for k in [a, b] {
        c.exec_drop(&ins, (k, format!("name {k}"))).await.unwrap();
    }
    for k in [a, b] {
        let s = &cluster.shards()[owner(&proxy, &t, k)];
        assert_eq!(count_on(s.primary, &t, &format!("WHERE user_id = {k}")), 1, "prepared insert of {k} on its shard");
        cluster.wait_replicated(s);
    }
    let sel = c.prep(format!("SELECT name, @@port FROM {t} WHERE user_id = ?")).await.unwrap();
    for k in [a, b, a] {
        let r: Vec<(String, u16)> = c.exec(&sel, (k,)).await.unwrap();
        let s = &cluster.shards()[owner(&proxy, &t, k)];
        assert_eq!(r, vec![(format!("name {k}"), s.replicas[0].port())]);
    }
    c.close(sel).await.unwrap();
    // Unknown statement handler.
    let (code, _) = err_code(&mut c, "DEALLOCATE PREPARE nope").await;
    assert!(code == 1243 || code == 1235);
}

#[tokio::test]
async fn multi_result_sets_and_server_errors_pass_through() {
    let cluster = Cluster::shared();
    let proxy = Proxy::start(&cluster.shardgate_config(""));
    let mut c = proxy.conn().await;
    let p = unique("proc");
    c.query_drop(format!("CREATE PROCEDURE {p}() BEGIN SELECT 1 AS a; SELECT 2 AS b, 3 AS c; END")).await.unwrap();
    let mut result = c.query_iter(format!("CALL {p}()")).await.unwrap();
    let first: Vec<i64> = result.collect().await.unwrap();
    let second: Vec<(i64, i64)> = result.collect().await.unwrap();
    drop(result);
    assert_eq!(first, vec![1]);
    assert_eq!(second, vec![(2, 3)]);
    // MariaDB's own error codes (4xxx) pass through unchanged.
    let t = unique("chk");
    c.query_drop(format!("CREATE TABLE {t} (v INT, CONSTRAINT positive CHECK (v > 0))")).await.unwrap();
    let (code, _) = err_code(&mut c, &format!("INSERT INTO {t} VALUES (-1)")).await;
    assert_eq!(code, 4025);
    // The connection still works after errors.
    let r = rows(&mut c, "SELECT 1").await;
    assert_eq!(r[0][0].as_deref(), Some("1"));
}

#[tokio::test]
async fn unparsable_statements_are_forwarded_only_when_pinned_and_are_counted() {
    let cluster = Cluster::shared();
    let proxy = Proxy::start(&cluster.shardgate_config(""));
    let unparsed = || proxy.shared().stats.unparsed.load(std::sync::atomic::Ordering::Relaxed);
    let mut c = proxy.conn().await;
    let (code, msg) = err_code(&mut c, "GET DIAGNOSTICS @n = NUMBER").await;
    assert_eq!(code, 1235, "{msg}");
    assert_eq!(unparsed(), 1);
    let lock = unique("pin");
    rows(&mut c, &format!("SELECT GET_LOCK('{lock}', 0)")).await;
    // Pinned now: the statement goes, as written, to the pinned connection.
    c.query_drop("GET DIAGNOSTICS @n = NUMBER").await.unwrap();
    assert_eq!(unparsed(), 2);
    c.query_drop("/* shardgate:shard=s1 */ GET DIAGNOSTICS @m = NUMBER").await.unwrap();
    assert_eq!(unparsed(), 3, "hinted unparsable statements are counted too");
}

#[tokio::test]
async fn a_transaction_whose_backend_connection_dies_is_reported_not_committed() {
    let t = unique("txlost");
    let (cluster, proxy, mut c) = setup(&t).await;
    let on_s0: Vec<i64> = (1..100).filter(|&k| owner(&proxy, &t, k) == 0).take(2).collect();
    let s0 = &cluster.shards()[0];
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop(format!("INSERT INTO {t} VALUES ({}, 'first')", on_s0[0])).await.unwrap();
    // The backend thread id of the transaction's own connection to s0's primary
    // (a bare SELECT CONNECTION_ID() is shardgate's own id for the client).
    let id: u64 =
        c.query_first(format!("SELECT CONNECTION_ID() FROM {t} WHERE user_id = {}", on_s0[0])).await.unwrap().unwrap();
    cluster.exec(s0.primary, &format!("KILL {id}"));
    let (code, msg) = err_code(&mut c, &format!("INSERT INTO {t} VALUES ({}, 'second')", on_s0[1])).await;
    assert_eq!(code, 1317, "{msg}");
    let (code, msg) = err_code(&mut c, "SAVEPOINT sp").await;
    assert_eq!(code, 1317, "still aborted: {msg}");
    let (code, msg) = err_code(&mut c, "COMMIT").await;
    assert_eq!(code, 1180, "COMMIT must not pretend: {msg}");
    assert_eq!(count_on(s0.primary, &t, ""), 0, "nothing of the transaction was committed");
    // The session goes on.
    c.query_drop(format!("INSERT INTO {t} VALUES ({}, 'after')", on_s0[0])).await.unwrap();
    assert_eq!(count_on(s0.primary, &t, ""), 1);
}

#[tokio::test]
async fn row_count_found_rows_and_warnings_answer_about_the_previous_statement() {
    let t = unique("diag");
    let (_cluster, proxy, mut c) = setup(&t).await;
    let values: Vec<String> = (1..=10).map(|k| format!("({k}, 'n{k}')")).collect();
    c.query_drop(format!("INSERT INTO {t} (user_id, name) VALUES {}", values.join(","))).await.unwrap();
    let one = |r: Vec<Vec<Option<String>>>| r[0][0].clone().unwrap();
    // The INSERT spanned both shards; ROW_COUNT() is the sum, whichever connection asks.
    assert_eq!(one(rows(&mut c, "SELECT ROW_COUNT()").await), "10");
    c.query_drop(format!("UPDATE {t} SET name = 'x' WHERE user_id IN (1, 2, 3)")).await.unwrap();
    assert_eq!(one(rows(&mut c, "SELECT ROW_COUNT() AS n").await), "3");
    // (On the primaries: the replicas may not have the rows yet.)
    let q = format!("SELECT /* shardgate:primary */ * FROM {t} ORDER BY user_id LIMIT 4");
    assert_eq!(rows(&mut c, &q).await.len(), 4);
    assert_eq!(one(rows(&mut c, "SELECT FOUND_ROWS()").await), "4");
    assert_eq!(one(rows(&mut c, "SELECT ROW_COUNT()").await), "-1", "after a SELECT");
    // A warning raised on one shard's pooled connection is still there to SHOW.
    c.query_drop(format!("UPDATE {t} SET name = CAST('12345678901234567890' AS CHAR(3)) WHERE user_id = 1"))
        .await
        .unwrap();
    let w = rows(&mut c, "SHOW WARNINGS").await;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!((w[0][0].as_deref(), w[0][1].as_deref()), (Some("Warning"), Some("1292")));
    assert_eq!(one(rows(&mut c, "SELECT @@warning_count").await), "1");
    assert_eq!(one(rows(&mut c, "SHOW COUNT(*) WARNINGS").await), "1");
    // An error is what SHOW ERRORS shows next; a new statement clears it.
    let (code, _) = err_code(&mut c, &format!("INSERT INTO {t} (user_id, name) VALUES (1, 'dup')")).await;
    assert_eq!(code, 1062);
    let e = rows(&mut c, "SHOW ERRORS").await;
    assert_eq!(e[0][1].as_deref(), Some("1062"));
    assert_eq!(one(rows(&mut c, "SELECT @@error_count").await), "1");
    c.query_drop("SELECT 1").await.unwrap();
    assert!(rows(&mut c, "SHOW WARNINGS").await.is_empty());
    // SQL_CALC_FOUND_ROWS: the total comes from the (pinned) backend connection.
    let q = format!("SELECT SQL_CALC_FOUND_ROWS * FROM {t} WHERE user_id = 2 LIMIT 0");
    assert!(rows(&mut c, &q).await.is_empty());
    assert_eq!(one(rows(&mut c, "SELECT FOUND_ROWS()").await), "1");
    drop(proxy);
}

#[tokio::test]
async fn connection_id_and_version_are_shardgates_own() {
    let proxy = Proxy::start(&Cluster::shared().shardgate_config(""));
    let mut c = proxy.conn().await;
    let id: u32 = c.query_first("SELECT CONNECTION_ID()").await.unwrap().unwrap();
    assert_eq!(id, c.id(), "the id from the handshake, which KILL takes");
    let v: String = c.query_first("SELECT VERSION()").await.unwrap().unwrap();
    assert!(v.ends_with("-shardgate"), "{v}");
    let (major, minor, _) = c.server_version();
    assert!(v.starts_with(&format!("{major}.{minor}")), "{v} vs the handshake's {major}.{minor}");
}

#[tokio::test]
async fn sql_prepared_statements_route_by_their_values() {
    let t = unique("sqlprep");
    let (cluster, proxy, mut c) = setup(&t).await;
    let (k0, k1) = keys_on_two_shards(&proxy, &t);
    c.query_drop(format!("PREPARE ins FROM 'INSERT INTO {t} (user_id, name) VALUES (?, ?)'")).await.unwrap();
    for k in [k0, k1] {
        c.query_drop(format!("SET @k = {k}, @n = 'it''s {k}'")).await.unwrap();
        c.query_drop("EXECUTE ins USING @k, @n").await.unwrap();
        let s = &cluster.shards()[owner(&proxy, &t, k)];
        assert_eq!(count_on(s.primary, &t, &format!("WHERE user_id = {k} AND name = 'it''s {k}'")), 1);
    }
    c.query_drop(format!(
        "PREPARE cnt FROM 'SELECT /* shardgate:primary */ COUNT(*) FROM {t} WHERE user_id IN (?, ?)'"
    ))
    .await
    .unwrap();
    c.query_drop(format!("SET @a = {k0}, @b = {k1}")).await.unwrap();
    assert_eq!(rows(&mut c, "EXECUTE cnt USING @a, @b").await[0][0].as_deref(), Some("2"), "merged across shards");
    c.query_drop("DEALLOCATE PREPARE cnt").await.unwrap();
    let (code, _) = err_code(&mut c, "EXECUTE cnt USING @a, @b").await;
    assert_eq!(code, 1243);
    let (code, _) = err_code(&mut c, "EXECUTE ins USING @a").await;
    assert_eq!(code, 1210, "wrong number of values");
}

#[tokio::test]
async fn an_idle_client_is_closed_after_its_wait_timeout() {
    let proxy = Proxy::start(&Cluster::shared().shardgate_config(""));
    let mut c = proxy.conn().await;
    let mut busy = proxy.conn().await;
    c.query_drop("SET SESSION wait_timeout = 1").await.unwrap();
    busy.query_drop("SET SESSION wait_timeout = 1").await.unwrap();
    // A statement that runs longer than the timeout is not idle.
    let slept: Option<i64> = busy.query_first("SELECT SLEEP(2)").await.unwrap();
    assert_eq!(slept, Some(0));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        // `c` has been idle since before `busy` slept; the sweeper runs every second.
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        if c.query_drop("SELECT 1").await.is_err() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the idle connection was never closed");
    }
}
