use super::*;
use crate::health::probe::SemiSync;

fn report(semi: SemiSync) -> ProbeReport {
    ProbeReport { reachable: true, semi_sync: semi, ..ProbeReport::default() }
}

#[test]
fn rpo_zero_needs_semi_sync_on_both_sides() {
    let on = report(SemiSync { source_on: Some(true), source_clients: Some(1), replica_on: None });
    let cand = report(SemiSync { replica_on: Some(true), ..SemiSync::default() });
    assert!(semi_sync_safe(Some(&on), &cand).is_ok());
    assert!(semi_sync_safe(None, &cand).unwrap_err().contains("never seen"));
    let fell_back = report(SemiSync { source_on: Some(false), source_clients: Some(1), replica_on: None });
    assert!(semi_sync_safe(Some(&fell_back), &cand).unwrap_err().contains("not on"));
    let no_clients = report(SemiSync { source_on: Some(true), source_clients: Some(0), replica_on: None });
    assert!(semi_sync_safe(Some(&no_clients), &cand).is_err());
    let async_cand = report(SemiSync::default());
    assert!(semi_sync_safe(Some(&on), &async_cand).unwrap_err().contains("candidate"));
}

#[test]
fn mariadb_statements() {
    assert_eq!(sql::wait_applied(Flavor::Mariadb, "0-1-42", 30), "SELECT MASTER_GTID_WAIT('0-1-42', 30)");
    assert_eq!(sql::promote(Flavor::Mariadb, false), ["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF"]);
    assert_eq!(sql::promote(Flavor::Mariadb, true)[3], "SET GLOBAL rpl_semi_sync_master_enabled = ON");
    assert_eq!(
        sql::repoint(Flavor::Mariadb, "127.0.0.1", 13307, None, false, false),
        [
            "STOP SLAVE",
            "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = 13307, MASTER_USE_GTID = slave_pos",
            "START SLAVE"
        ]
    );
    let rejoin = sql::repoint(Flavor::Mariadb, "h", 1, Some(("repl", "p'w")), true, true);
    assert_eq!(rejoin[0], "SET GLOBAL read_only = ON");
    assert_eq!(rejoin[1], "SET GLOBAL rpl_semi_sync_master_enabled = OFF");
    assert!(rejoin[3].contains("MASTER_USER = 'repl', MASTER_PASSWORD = 'p''w', MASTER_USE_GTID = current_pos"));
}

#[test]
fn mysql_statements() {
    assert!(sql::wait_applied(Flavor::Mysql, "u:1-5", 3).starts_with("SELECT WAIT_FOR_EXECUTED_GTID_SET('u:1-5', 3)"));
    assert_eq!(sql::promote(Flavor::Mysql, false)[1], "RESET REPLICA ALL");
    let v = sql::repoint(Flavor::Mysql, "db2", 3306, Some(("r", "s")), false, false);
    assert_eq!(
        v[1],
        "CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'db2', SOURCE_PORT = 3306, SOURCE_USER = 'r', SOURCE_PASSWORD = 's', SOURCE_AUTO_POSITION = 1"
    );
    assert_eq!(sql::set_read_only(Flavor::Mysql), "SET GLOBAL super_read_only = ON");
}

#[test]
fn addresses_split_at_the_last_colon() {
    assert_eq!(split_addr("127.0.0.1:13306"), ("127.0.0.1", 13306));
    assert_eq!(split_addr("db"), ("db", 3306));
}
