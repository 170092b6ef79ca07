//! Parsing probe results and deciding fitness, on results shaped like the servers' own.

use super::*;
use crate::protocol::wire::ErrInfo;

fn set(columns: &[&str], rows: &[&[Option<&str>]]) -> ResultSet {
    ResultSet {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows: rows.iter().map(|r| r.iter().map(|c| c.map(|v| v.as_bytes().to_vec())).collect()).collect(),
    }
}

fn mariadb_vars(read_only: &str) -> ResultSet {
    set(
        &["@@server_id", "@@read_only", "@@gtid_current_pos", "@@gtid_slave_pos", "@@gtid_binlog_pos"],
        &[&[Some("2"), Some(read_only), Some("0-1-42"), Some("0-1-42"), Some("0-2-3")]],
    )
}

fn semi_sync(rows: &[&[Option<&str>]]) -> ResultSet {
    set(&["Variable_name", "Value"], rows)
}

/// SHOW SLAVE STATUS as MariaDB names its columns (a subset, in a different order than the server's).
fn slave_status(io: &str, sql: &str, behind: Option<&str>) -> ResultSet {
    set(
        &[
            "Slave_IO_State",
            "Master_Host",
            "Master_Port",
            "Slave_IO_Running",
            "Slave_SQL_Running",
            "Last_IO_Error",
            "Last_SQL_Error",
            "Seconds_Behind_Master",
            "Gtid_IO_Pos",
        ],
        &[&[
            Some(""),
            Some("127.0.0.1"),
            Some("3306"),
            Some(io),
            Some(sql),
            Some(""),
            Some(""),
            behind,
            Some("0-1-42"),
        ]],
    )
}

fn report(sets: Vec<ResultSet>) -> ProbeReport {
    parse_report(Flavor::Mariadb, MultiResult { sets, error: None, ..Default::default() }).expect("parses")
}

#[test]
fn mariadb_replica() {
    let r = report(vec![
        mariadb_vars("1"),
        semi_sync(&[&[Some("Rpl_semi_sync_slave_status"), Some("ON")]]),
        slave_status("Yes", "Yes", Some("0")),
    ]);
    assert!(r.reachable);
    assert_eq!((r.server_id, r.read_only), (Some(2), Some(true)));
    assert_eq!(r.gtid_executed.as_deref(), Some("0-1-42"));
    assert_eq!(r.gtid_slave_pos.as_deref(), Some("0-1-42"));
    assert_eq!(r.gtid_binlog_pos.as_deref(), Some("0-2-3"));
    assert_eq!(r.semi_sync, SemiSync { source_on: None, source_clients: None, replica_on: Some(true) });
    let rep = r.replica().expect("a replica");
    assert_eq!(rep.source, "127.0.0.1:3306");
    assert!(rep.io_running && rep.sql_running);
    assert_eq!(rep.seconds_behind, Some(0));
    assert_eq!(rep.gtid_received.as_deref(), Some("0-1-42"));
    assert_eq!(r.fit_for_reads(10), Ok(()));
}

#[test]
fn mariadb_primary_with_semi_sync() {
    let r = report(vec![
        mariadb_vars("OFF"),
        semi_sync(&[
            &[Some("Rpl_semi_sync_master_clients"), Some("2")],
            &[Some("Rpl_semi_sync_master_status"), Some("ON")],
            &[Some("Rpl_semi_sync_master_yes_tx"), Some("7")],
            &[Some("Rpl_semi_sync_slave_status"), Some("OFF")],
        ]),
        set(&["Slave_IO_Running"], &[]),
    ]);
    assert_eq!(r.read_only, Some(false));
    assert_eq!(r.semi_sync, SemiSync { source_on: Some(true), source_clients: Some(2), replica_on: Some(false) });
    assert_eq!(r.replication, Replication::NotReplica);
    assert_eq!(r.fit_for_reads(10), Err(Unfit::NotReplica));
}

#[test]
fn missing_semi_sync_plugin_is_unknown_not_off() {
    let r = report(vec![mariadb_vars("0"), semi_sync(&[]), set(&["Slave_IO_Running"], &[])]);
    assert_eq!(r.semi_sync, SemiSync::default());
}

#[test]
fn fitness_follows_threads_and_lag() {
    let fit = |io, sql, behind| report(vec![mariadb_vars("1"), semi_sync(&[]), slave_status(io, sql, behind)]);
    assert_eq!(fit("Yes", "No", None).fit_for_reads(10), Err(Unfit::SqlStopped));
    assert_eq!(fit("Connecting", "Yes", None).fit_for_reads(10), Err(Unfit::IoStopped("Connecting".into())));
    assert_eq!(fit("Yes", "Yes", None).fit_for_reads(10), Err(Unfit::LagUnknown));
    assert_eq!(fit("Yes", "Yes", Some("11")).fit_for_reads(10), Err(Unfit::Lagging(11)));
    assert_eq!(fit("Yes", "Yes", Some("10")).fit_for_reads(10), Ok(()));
    assert_eq!(fit("Yes", "Yes", Some("1")).fit_for_reads(0), Err(Unfit::Lagging(1)));
    assert_eq!(ProbeReport::failed("x".into(), Duration::ZERO).fit_for_reads(10), Err(Unfit::Unreachable));
}

#[test]
fn unreadable_replication_status_is_unfit_but_reachable() {
    let denied = ErrInfo {
        code: 1227,
        sqlstate: *b"42000",
        message: "Access denied; you need (at least one of) the SLAVE MONITOR privilege(s)".into(),
    };
    let r = parse_report(
        Flavor::Mariadb,
        MultiResult { sets: vec![mariadb_vars("1"), semi_sync(&[])], error: Some(denied), ..Default::default() },
    )
    .unwrap();
    assert!(r.reachable);
    assert!(matches!(&r.replication, Replication::Unreadable(e) if e.contains("SLAVE MONITOR") && e.contains("1227")));
    assert!(matches!(r.fit_for_reads(10), Err(Unfit::StatusUnknown(_))));
}

#[test]
fn a_failing_first_statement_fails_the_probe() {
    let err = ErrInfo { code: 1193, sqlstate: *b"HY000", message: "Unknown system variable".into() };
    let e = parse_report(Flavor::Mariadb, MultiResult { sets: vec![], error: Some(err), ..Default::default() })
        .unwrap_err();
    assert!(e.contains("Unknown system variable") && e.contains("1193"), "{e}");
}

#[test]
fn mysql_replica_status_columns() {
    let vars = set(&["@@server_id", "@@read_only", "@@gtid_executed"], &[&[Some("3"), Some("1"), Some("uuid:1-9")]]);
    let status = set(
        &[
            "Source_Host",
            "Source_Port",
            "Replica_IO_Running",
            "Replica_SQL_Running",
            "Seconds_Behind_Source",
            "Retrieved_Gtid_Set",
        ],
        &[&[Some("db1"), Some("3306"), Some("Yes"), Some("Yes"), Some("3"), Some("uuid:1-10")]],
    );
    let semi = semi_sync(&[&[Some("Rpl_semi_sync_replica_status"), Some("ON")]]);
    let r =
        parse_report(Flavor::Mysql, MultiResult { sets: vec![vars, semi, status], error: None, ..Default::default() })
            .unwrap();
    assert_eq!(r.gtid_executed.as_deref(), Some("uuid:1-9"));
    assert_eq!((r.gtid_slave_pos.as_deref(), r.gtid_binlog_pos.as_deref()), (None, None));
    assert_eq!(r.semi_sync.replica_on, Some(true));
    let rep = r.replica().unwrap();
    assert_eq!((rep.source.as_str(), rep.seconds_behind), ("db1:3306", Some(3)));
    assert_eq!(rep.gtid_received.as_deref(), Some("uuid:1-10"));
    assert_eq!(r.fit_for_reads(10), Ok(()));
}

#[test]
fn probe_statements_per_flavor() {
    let m = probe_sql(Flavor::Mariadb, replica_status_sql(Flavor::Mariadb, false));
    assert!(m.contains("@@gtid_current_pos") && m.contains("@@gtid_slave_pos") && m.ends_with("SHOW SLAVE STATUS"));
    let my = probe_sql(Flavor::Mysql, replica_status_sql(Flavor::Mysql, false));
    assert!(my.contains("@@gtid_executed") && !my.contains("gtid_current_pos") && my.ends_with("SHOW REPLICA STATUS"));
    assert_eq!(replica_status_sql(Flavor::Mysql, true), "SHOW SLAVE STATUS");
}
