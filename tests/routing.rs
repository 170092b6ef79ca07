//! End-to-end routing through shardgate over a real 2-shard MariaDB cluster
//! (primary + replica per shard, GTID replication). Where a statement ran is
//! checked on the backends directly, or by `@@port` in the returned row.

mod support;

use mysql_async::prelude::Queryable;
use support::fixtures::*;
use support::proxy::{err_code, rows, unique, Proxy};
use support::Cluster;

#[tokio::test]
async fn create_table_reaches_every_shard_and_rows_land_on_their_owner() {
    let t = unique("users_spread");
    let (cluster, proxy, mut c) = setup(&t).await;
    for s in cluster.shards() {
        assert_eq!(count_on(s.primary, &t, ""), 0, "table created on {}", s.name);
    }
    // 1,000 rows in multi-row INSERTs that span both shards (split per shard).
    for chunk in (1..=1000).collect::<Vec<i64>>().chunks(100) {
        let values: Vec<String> = chunk.iter().map(|k| format!("({k}, 'name {k}')")).collect();
        c.query_drop(format!("INSERT INTO {t} (user_id, name) VALUES {}", values.join(", "))).await.unwrap();
    }
    let mut total = 0;
    for (i, s) in cluster.shards().iter().enumerate() {
        let n = count_on(s.primary, &t, "");
        assert!(n > 300, "shard {} holds {n} of 1000 rows: not spread", s.name);
        total += n;
        let misplaced = (1..=1000).filter(|&k| owner(&proxy, &t, k) == i).count() as i64;
        assert_eq!(n, misplaced, "shard {} holds exactly the keys it owns", s.name);
        cluster.wait_replicated(s);
        assert_eq!(count_on(s.replicas[0], &t, ""), n, "replica of {} has the same rows", s.name);
    }
    assert_eq!(total, 1000, "every row on exactly one shard");
    for k in [1i64, 7, 500, 1000] {
        let s = &cluster.shards()[owner(&proxy, &t, k)];
        assert_eq!(count_on(s.primary, &t, &format!("WHERE user_id = {k}")), 1);
    }
}

#[tokio::test]
async fn point_read_is_served_by_the_owning_shards_replica() {
    let t = unique("users_point");
    let (cluster, proxy, mut c) = setup(&t).await;
    c.query_drop(format!("INSERT INTO {t} VALUES (7, 'seven')")).await.unwrap();
    let shard = &cluster.shards()[owner(&proxy, &t, 7)];
    cluster.wait_replicated(shard);
    let r = rows(&mut c, &format!("SELECT user_id, name, @@port FROM {t} WHERE user_id = 7")).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0][1].as_deref(), Some("seven"));
    assert_eq!(r[0][2].as_deref(), Some(shard.replicas[0].port().to_string().as_str()), "served by the replica");
    // A hint forces the primary.
    let r = rows(&mut c, &format!("SELECT /* shardgate:primary */ @@port FROM {t} WHERE user_id = 7")).await;
    assert_eq!(r[0][0].as_deref(), Some(shard.primary.port().to_string().as_str()));
    // Locking reads and reads inside a transaction go to the primary.
    let r = rows(&mut c, &format!("SELECT @@port FROM {t} WHERE user_id = 7 FOR UPDATE")).await;
    assert_eq!(r[0][0].as_deref(), Some(shard.primary.port().to_string().as_str()));
    c.query_drop("BEGIN").await.unwrap();
    let r = rows(&mut c, &format!("SELECT @@port FROM {t} WHERE user_id = 7")).await;
    assert_eq!(r[0][0].as_deref(), Some(shard.primary.port().to_string().as_str()));
    c.query_drop("COMMIT").await.unwrap();
}

#[tokio::test]
async fn scatter_read_reaches_every_shard_and_merges_what_needs_it() {
    let t = unique("users_scatter");
    let (cluster, _proxy, mut c) = setup(&t).await;
    let values: Vec<String> = (1..=50).map(|k| format!("({k}, 'n{k}')")).collect();
    c.query_drop(format!("INSERT INTO {t} (user_id, name) VALUES {}", values.join(","))).await.unwrap();
    for s in cluster.shards() {
        cluster.wait_replicated(s);
    }
    let r = rows(&mut c, &format!("SELECT user_id, @@port FROM {t}")).await;
    assert_eq!(r.len(), 50, "all rows from all shards");
    let mut ports: Vec<String> = r.iter().map(|row| row[1].clone().unwrap()).collect();
    ports.sort();
    ports.dedup();
    let mut want: Vec<String> = cluster.shards().iter().map(|s| s.replicas[0].port().to_string()).collect();
    want.sort();
    assert_eq!(ports, want, "each shard's replica served its part");
    // Cross-shard merges give what one server would.
    let one = |r: Vec<Vec<Option<String>>>| r.into_iter().map(|row| row[0].clone().unwrap()).collect::<Vec<_>>();
    assert_eq!(one(rows(&mut c, &format!("SELECT COUNT(*) FROM {t}")).await), ["50"]);
    let ids = one(rows(&mut c, &format!("SELECT user_id FROM {t} ORDER BY user_id DESC")).await);
    assert_eq!(ids, (1..=50).rev().map(|k| k.to_string()).collect::<Vec<_>>(), "k-way ordered merge");
    let page = one(rows(&mut c, &format!("SELECT user_id FROM {t} ORDER BY user_id LIMIT 10, 3")).await);
    assert_eq!(page, ["11", "12", "13"], "OFFSET/LIMIT applied after the merge");
    assert_eq!(rows(&mut c, &format!("SELECT * FROM {t} LIMIT 5")).await.len(), 5);
    let by_len =
        rows(&mut c, &format!("SELECT LENGTH(name) AS l, COUNT(*), MIN(user_id) FROM {t} GROUP BY l ORDER BY l")).await;
    let got: Vec<Vec<String>> = by_len.into_iter().map(|r| r.into_iter().map(Option::unwrap).collect()).collect();
    assert_eq!(got, [["2", "9", "1"], ["3", "41", "10"]], "partial groups of both shards folded");
    assert_eq!(rows(&mut c, &format!("SELECT DISTINCT LEFT(name, 2) FROM {t}")).await.len(), 9);
    // What cannot be merged exactly is refused.
    for q in [format!("SELECT COUNT(DISTINCT name) FROM {t}"), format!("SELECT GROUP_CONCAT(name) FROM {t}")] {
        let (code, msg) = err_code(&mut c, &q).await;
        assert_eq!(code, 1235, "{q}: {msg}");
    }
    // The same constructs on one shard are fine.
    let r = rows(&mut c, &format!("SELECT COUNT(*) FROM {t} WHERE user_id = 3")).await;
    assert_eq!(r[0][0].as_deref(), Some("1"));
}

#[tokio::test]
async fn updates_and_deletes_without_key_hit_every_primary_and_sum_rows() {
    let t = unique("users_upd");
    let (cluster, proxy, mut c) = setup(&t).await;
    let values: Vec<String> = (1..=40).map(|k| format!("({k}, 'old')")).collect();
    c.query_drop(format!("INSERT INTO {t} (user_id, name) VALUES {}", values.join(","))).await.unwrap();
    c.query_drop(format!("UPDATE {t} SET name = 'new' WHERE user_id > 10")).await.unwrap();
    assert_eq!(c.affected_rows(), 30, "affected rows summed over shards");
    for s in cluster.shards() {
        assert_eq!(count_on(s.primary, &t, "WHERE name = 'old'"), count_on(s.primary, &t, "WHERE user_id <= 10"));
    }
    c.query_drop(format!("DELETE FROM {t} WHERE user_id = 5")).await.unwrap();
    assert_eq!(c.affected_rows(), 1);
    assert_eq!(count_on(cluster.shards()[owner(&proxy, &t, 5)].primary, &t, "WHERE user_id = 5"), 0);
    c.query_drop(format!("DELETE FROM {t}")).await.unwrap();
    assert_eq!(c.affected_rows(), 39);
    let (code, _) = err_code(&mut c, &format!("INSERT INTO {t} (name) VALUES ('nokey')")).await;
    assert_eq!(code, 1235, "INSERT without a shard key value is refused");
    let elsewhere = (2..100).find(|&k| owner(&proxy, &t, k) != owner(&proxy, &t, 1)).unwrap();
    let (code, _) = err_code(&mut c, &format!("UPDATE {t} SET user_id = {elsewhere} WHERE user_id = 1")).await;
    assert_eq!(code, 1235, "moving a row between shards is refused");
    let same = (2..100).find(|&k| owner(&proxy, &t, k) == owner(&proxy, &t, 1)).unwrap();
    c.query_drop(format!("INSERT INTO {t} VALUES (1, 'back')")).await.unwrap();
    c.query_drop(format!("UPDATE {t} SET user_id = {same} WHERE user_id = 1")).await.unwrap();
    assert_eq!(c.affected_rows(), 1, "a new key on the same shard is fine");
}

#[tokio::test]
async fn in_list_spanning_shards_returns_every_row() {
    let t = unique("users_in");
    let (_cluster, proxy, mut c) = setup(&t).await;
    let values: Vec<String> = (1..=20).map(|k| format!("({k}, 'n{k}')")).collect();
    c.query_drop(format!("INSERT INTO {t} (user_id, name) VALUES {}", values.join(","))).await.unwrap();
    let keys = [1i64, 2, 3, 4, 5, 6];
    assert!(keys.iter().any(|&k| owner(&proxy, &t, k) == 0) && keys.iter().any(|&k| owner(&proxy, &t, k) == 1));
    let mut r =
        rows(&mut c, &format!("SELECT /* shardgate:primary */ user_id FROM {t} WHERE user_id IN (1,2,3,4,5,6)")).await;
    r.sort_by_key(|row| row[0].clone().unwrap().parse::<i64>().unwrap());
    let got: Vec<String> = r.into_iter().map(|row| row[0].clone().unwrap()).collect();
    assert_eq!(got, vec!["1", "2", "3", "4", "5", "6"]);
}

#[tokio::test]
async fn broadcast_and_unlisted_tables() {
    let cluster = Cluster::shared();
    let b = unique("bcast");
    let u = unique("plain");
    let proxy = Proxy::start(&cluster.shardgate_config(&format!("[[tables]]\nname = \"{b}\"\nbroadcast = true\n")));
    let mut c = proxy.conn().await;
    c.query_drop(format!("CREATE TABLE {b} (code CHAR(2) PRIMARY KEY, name VARCHAR(32))")).await.unwrap();
    c.query_drop(format!("INSERT INTO {b} VALUES ('FR', 'France'), ('JP', 'Japan')")).await.unwrap();
    for s in cluster.shards() {
        assert_eq!(count_on(s.primary, &b, ""), 2, "broadcast write on {}", s.name);
        cluster.wait_replicated(s);
    }
    let r = rows(&mut c, &format!("SELECT code, @@port FROM {b} ORDER BY code")).await;
    assert_eq!(r.len(), 2, "a broadcast read is served by one shard (ORDER BY allowed)");
    c.query_drop(format!("CREATE TABLE {u} (id INT PRIMARY KEY)")).await.unwrap();
    c.query_drop(format!("INSERT INTO {u} VALUES (1), (2)")).await.unwrap();
    let s0 = &cluster.shards()[0];
    assert_eq!(count_on(s0.primary, &u, ""), 2, "unlisted table lives on the default shard");
    let on_s1 = support::sql::try_sql(cluster.shards()[1].primary, &format!("SELECT 1 FROM {u}"));
    assert!(on_s1.is_err(), "unlisted table is not created on other shards");
}

#[tokio::test]
async fn shard_hint_and_show_route() {
    let t = unique("users_hint");
    let (cluster, _proxy, mut c) = setup(&t).await;
    let r = rows(&mut c, "SELECT /* shardgate:shard=s1 */ @@port").await;
    let s1 = &cluster.shards()[1];
    let port = r[0][0].clone().unwrap();
    assert!(port == s1.replicas[0].port().to_string() || port == s1.primary.port().to_string());
    let r = rows(&mut c, &format!("SHOW SHARDGATE ROUTE SELECT * FROM {t} WHERE user_id = 7")).await;
    assert_eq!(r.len(), 1, "one target");
    assert_eq!(r[0][1].as_deref(), Some("replica"));
    let r = rows(&mut c, &format!("SHOW SHARDGATE ROUTE DELETE FROM {t}")).await;
    assert_eq!(r.len(), 2, "all shards");
    assert!(r.iter().all(|row| row[1].as_deref() == Some("primary")));
    let (code, msg) = err_code(&mut c, "FROBNICATE THE DATABASE").await;
    assert_eq!(code, 1235, "unparsable statements are refused: {msg}");
    let r = rows(&mut c, "/* shardgate:shard=s0 */ DO 1").await;
    assert!(r.is_empty(), "unparsable statement with a shard hint is forwarded");
}

#[tokio::test]
async fn backend_down_gives_a_clear_error_quickly() {
    let cluster = Cluster::shared();
    let mut cfg = cluster.shardgate_config("");
    // Point shard s1 at a port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let s1 = &cluster.shards()[1];
    cfg = cfg.replace(&format!("primary = \"{}\"", s1.primary), &format!("primary = \"{dead}\""));
    cfg = cfg.replace(&format!("replicas = [\"{}\"]", s1.replicas[0]), "replicas = []");
    cfg = cfg.replace("database = \"app\"\n", "database = \"app\"\nconnect_timeout_ms = 500\n");
    let proxy = Proxy::start(&cfg);
    let mut c = proxy.conn().await;
    let started = std::time::Instant::now();
    let (code, msg) = err_code(&mut c, "SELECT /* shardgate:shard=s1 */ 1").await;
    assert_eq!(code, 1429, "{msg}");
    assert!(msg.contains(&dead.to_string()), "names the backend: {msg}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "no hang");
    // The session is still usable for the healthy shard.
    let r = rows(&mut c, "SELECT /* shardgate:shard=s0 */ 1").await;
    assert_eq!(r[0][0].as_deref(), Some("1"));
}

#[tokio::test]
async fn insert_without_column_list_learns_the_table_definition() {
    let cluster = Cluster::shared();
    let t = unique("nocols");
    let proxy = Proxy::start(
        &cluster
            .shardgate_config(&format!("[[tables]]\nname = \"{t}\"\nshard_key = \"user_id\"\nalgorithm = \"hash\"\n")),
    );
    // Created behind the proxy's back (another proxy, or a DBA): the key is the 2nd column.
    for s in cluster.shards() {
        cluster.exec(s.primary, &format!("CREATE TABLE {t} (name VARCHAR(20), user_id BIGINT PRIMARY KEY)"));
    }
    let mut c = proxy.conn().await;
    c.query_drop(format!("INSERT INTO {t} VALUES ('a', 1), ('b', 2), ('c', 3), ('d', 4)")).await.unwrap();
    for k in 1..=4 {
        let s = &cluster.shards()[owner(&proxy, &t, k)];
        assert_eq!(count_on(s.primary, &t, &format!("WHERE user_id = {k}")), 1, "key {k} on its shard");
    }
    let (code, msg) = err_code(&mut c, &format!("INSERT INTO {t} VALUES (5)")).await;
    assert_eq!(code, 1235, "a row that does not match the learned columns is refused: {msg}");
}

#[tokio::test]
async fn prepared_statements_whose_values_span_shards_are_merged() {
    let t = unique("users_prep_merge");
    let (cluster, _proxy, mut c) = setup(&t).await;
    let values: Vec<String> = (1..=20).map(|k| format!("({k}, 'n{k}')")).collect();
    c.query_drop(format!("INSERT INTO {t} (user_id, name) VALUES {}", values.join(","))).await.unwrap();
    c.query_drop(format!("INSERT INTO {t} (user_id, name) VALUES (21, 'O''Br\\\\ien')")).await.unwrap();
    for s in cluster.shards() {
        cluster.wait_replicated(s);
    }
    let ids: Vec<i64> = c
        .exec(
            format!("SELECT user_id FROM {t} WHERE user_id IN (?, ?, ?, ?) ORDER BY user_id DESC LIMIT ?"),
            (1, 2, 3, 4, 3),
        )
        .await
        .unwrap();
    assert_eq!(ids, [4, 3, 2], "values on both shards: merged, LIMIT bound as a parameter");
    let (n, max): (i64, String) =
        c.exec_first(format!("SELECT COUNT(*), MAX(name) FROM {t} WHERE user_id > ?"), (10,)).await.unwrap().unwrap();
    assert_eq!((n, max.as_str()), (11, "O'Br\\ien"));
    let n: i64 =
        c.exec_first(format!("SELECT COUNT(*) FROM {t} WHERE name = ?"), ("O'Br\\ien",)).await.unwrap().unwrap();
    assert_eq!(n, 1, "quotes and backslashes survive being written into the text");
    // Values on one shard: the backend's own prepared statement, relayed.
    let one: Vec<i64> =
        c.exec(format!("SELECT user_id FROM {t} WHERE user_id = ? ORDER BY user_id LIMIT ?"), (7, 5)).await.unwrap();
    assert_eq!(one, [7]);
}

#[tokio::test]
async fn the_first_shard_error_of_a_merge_cancels_the_other_shards() {
    let t = unique("users_cancel");
    let cluster = Cluster::shared();
    let proxy = Proxy::start(&cluster.shardgate_config(&support::fixtures::sharded(&t)));
    let mut c = proxy.conn().await;
    // The table exists on s0 only: s1 fails at once while s0 sleeps.
    let s0 = &cluster.shards()[0];
    cluster.exec(s0.primary, &format!("CREATE TABLE {t} (user_id BIGINT PRIMARY KEY); INSERT INTO {t} VALUES (1)"));
    let started = std::time::Instant::now();
    let q = format!("SELECT /* shardgate:primary */ COUNT(*) FROM {t} WHERE SLEEP(30) = 0");
    let (code, msg) = err_code(&mut c, &q).await;
    assert_eq!(code, 1146, "{msg}");
    assert!(started.elapsed() < std::time::Duration::from_secs(25), "the error did not wait for the slow shard");
    support::ha::poll("the slow shard's query to be killed", std::time::Duration::from_secs(10), || {
        let running = cluster.sql(s0.primary, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%SLEEP(30)%' AND INFO NOT LIKE '%PROCESSLIST%'");
        running[0][0].as_deref() == Some("0")
    });
    cluster.exec(s0.primary, &format!("DROP TABLE {t}"));
}

#[tokio::test]
async fn a_shard_key_bound_as_a_whole_double_places_like_the_integer() {
    // mysql2 (JavaScript) binds every number as DOUBLE.
    let t = unique("users_double_key");
    let (cluster, proxy, mut c) = setup(&t).await;
    let (k0, k1) = keys_on_two_shards(&proxy, &t);
    for k in [k0, k1] {
        c.exec_drop(format!("INSERT INTO {t} (user_id, name) VALUES (?, ?)"), (k as f64, "d")).await.unwrap();
        let s = &cluster.shards()[owner(&proxy, &t, k)];
        assert_eq!(count_on(s.primary, &t, &format!("WHERE user_id = {k}")), 1, "key {k} on its own shard");
    }
    let n: Option<i64> = c
        .exec_first(format!("SELECT /* shardgate:primary */ COUNT(*) FROM {t} WHERE user_id = ?"), (k1 as f64,))
        .await
        .unwrap();
    assert_eq!(n, Some(1));
}
