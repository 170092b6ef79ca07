//! Prepared statements against a server's max_prepared_stmt_count, with a
//! private cluster (the limit is global to the server).

mod support;

use mysql_async::prelude::Queryable;
use support::proxy::Proxy;
use support::{Cluster, ClusterOptions};

#[tokio::test]
async fn statements_are_recycled_when_the_server_runs_out() {
    let cluster = Cluster::start(ClusterOptions { shards: 1, replicas: 0, semi_sync: false });
    let primary = cluster.shards()[0].primary;
    cluster.exec(primary, "SET GLOBAL max_prepared_stmt_count = 4");
    let cfg = cluster.shardgate_config("").replace("database = \"app\"\n", "database = \"app\"\npool_size = 1\n");
    let proxy = Proxy::start(&cfg);
    let mut c = proxy.conn().await;
    for i in 0..10 {
        // Ten different statements on one pooled backend connection: more
        // than the server allows at once.
        let sql = format!("SELECT {i} + ?");
        let v: Option<i64> = c.exec_first(sql.as_str(), (1,)).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(v, Some(i + 1));
    }
    let open = support::sql::sql(primary, "SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'");
    let n: i64 = open[0][1].clone().unwrap().parse().unwrap();
    assert!(n <= 4, "shardgate stays within the server's limit, has {n}");
}

#[tokio::test]
async fn many_sessions_preparing_the_same_statement_do_not_leak_backend_statements() {
    let cluster = Cluster::start(ClusterOptions { shards: 1, replicas: 0, semi_sync: false });
    let primary = cluster.shards()[0].primary;
    let cfg = cluster.shardgate_config("").replace("database = \"app\"\n", "database = \"app\"\npool_size = 2\n");
    let proxy = Proxy::start(&cfg);
    for i in 0..20 {
        let mut c = proxy.conn().await;
        let v: Option<i64> = c.exec_first("SELECT ? + 1", (i,)).await.unwrap();
        assert_eq!(v, Some(i + 1));
        c.disconnect().await.unwrap();
    }
    let open = support::sql::sql(primary, "SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'");
    let n: i64 = open[0][1].clone().unwrap().parse().unwrap();
    assert!(n <= 2, "one backend statement per pooled connection, not one per session: {n}");
}
