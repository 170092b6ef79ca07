//! Tests for `[[tables]]`.

use super::tests::Doc;
use crate::config::{Algorithm, KeyType, TableRule};

fn tables(body: &str) -> Doc<'_> {
    Doc { tables: body, ..Doc::default() }
}

fn table(fields: &str) -> String {
    format!("[[tables]]\n{fields}\n")
}

#[test]
fn sharded_table_resolved() {
    let t = table(
        "name = \"Users\"\nshard_key = \"User_ID\"\nalgorithm = \"hash\"\nkey_type = \"string\"\n\
         collation = \"UTF8MB4_Unicode_CI\"",
    );
    let cfg = tables(&t).ok();
    let Some(TableRule::Sharded(u)) = cfg.tables.get("users") else { panic!("users missing") };
    assert_eq!(u.name, "Users");
    assert_eq!(u.shard_key, "user_id");
    assert_eq!(u.algorithm, Algorithm::Hash);
    assert_eq!(u.key_type, KeyType::String);
    assert_eq!(u.collation, "utf8mb4_unicode_ci");
    assert!(cfg.table("USERS").is_some());
}

#[test]
fn defaults_int_key_and_general_ci() {
    let t = table("name = \"t\"\nshard_key = \"id\"\nalgorithm = \"mod\"");
    let cfg = tables(&t).ok();
    let Some(TableRule::Sharded(s)) = cfg.table("t") else { panic!() };
    assert_eq!(s.key_type, KeyType::Int);
    assert_eq!(s.collation, "utf8mb4_general_ci");
    let t = table("name = \"t\"\nshard_key = \"name\"\nalgorithm = \"hash\"\nkey_type = \"string\"");
    let Some(TableRule::Sharded(s)) = tables(&t).ok().table("t").cloned() else { panic!() };
    assert_eq!(s.collation, "utf8mb4_general_ci");
}

#[test]
fn table_names_unique_case_insensitively() {
    let t = format!("{}{}", table("name = \"Users\"\nbroadcast = true"), table("name = \"USERS\"\nbroadcast = true"));
    tables(&t).fails("tables[1].name", &["\"USERS\"", "tables[0] (Users)", "unique"]);
    let t = table("name = \"\"\nbroadcast = true");
    tables(&t).fails("tables[0].name", &["empty"]);
}

#[test]
fn sharded_tables_need_shard_key_and_algorithm() {
    let t = table("name = \"users\"\nalgorithm = \"hash\"");
    tables(&t).fails("tables[0] (users)", &["shard_key is required unless broadcast = true"]);
    let t = table("name = \"users\"\nshard_key = \"id\"");
    tables(&t).fails("tables[0] (users)", &["algorithm is required"]);
    let t = table("name = \"users\"\nshard_key = \"\"\nalgorithm = \"hash\"");
    tables(&t).fails("tables[0].shard_key (users)", &["empty"]);
}

#[test]
fn broadcast_tables_take_no_sharding_keys() {
    for extra in ["shard_key = \"id\"", "algorithm = \"hash\"", "boundaries = [1]", "collation = \"binary\""] {
        let t = table(&format!("name = \"countries\"\nbroadcast = true\n{extra}"));
        let key = extra.split(' ').next().unwrap();
        tables(&t).fails("tables[0] (countries)", &[key, "broadcast"]);
    }
    let t = table("name = \"countries\"\nbroadcast = true");
    assert!(matches!(tables(&t).ok().table("countries"), Some(TableRule::Broadcast)));
}

#[test]
fn range_boundaries_count_and_order() {
    // Two shards in the default doc: exactly one boundary.
    let t = table("name = \"t\"\nshard_key = \"id\"\nalgorithm = \"range\"");
    tables(&t).fails("tables[0].boundaries (t)", &["exactly 1 boundary", "got 0"]);
    let t = table("name = \"t\"\nshard_key = \"id\"\nalgorithm = \"range\"\nboundaries = [10, 20]");
    tables(&t).fails("tables[0].boundaries (t)", &["exactly 1", "got 2"]);
    let t = table("name = \"t\"\nshard_key = \"id\"\nalgorithm = \"range\"\nboundaries = [10]");
    tables(&t).ok();

    let three = "[[shards]]\nname = \"s0\"\nprimary = \"a:1\"\n[[shards]]\nname = \"s1\"\nprimary = \"b:1\"\n\
                 [[shards]]\nname = \"s2\"\nprimary = \"c:1\"\n";
    for b in ["[20, 10]", "[10, 10]"] {
        let t = table(&format!("name = \"t\"\nshard_key = \"id\"\nalgorithm = \"range\"\nboundaries = {b}"));
        Doc { shards: three, tables: &t, ..Doc::default() }
            .fails("tables[0].boundaries (t)", &["strictly ascending", "boundaries[1]"]);
    }
    let t = table("name = \"t\"\nshard_key = \"id\"\nalgorithm = \"range\"\nboundaries = [-5, 10]");
    Doc { shards: three, tables: &t, ..Doc::default() }.ok();
}

#[test]
fn only_range_has_boundaries() {
    for alg in ["hash", "mod"] {
        let t = table(&format!("name = \"t\"\nshard_key = \"id\"\nalgorithm = \"{alg}\"\nboundaries = [10]"));
        tables(&t).fails("tables[0].boundaries (t)", &["only algorithm = \"range\"", alg]);
    }
}

#[test]
fn mod_and_range_need_int_keys() {
    for alg in ["mod", "range"] {
        let t = table(&format!(
            "name = \"t\"\nshard_key = \"id\"\nalgorithm = \"{alg}\"\nkey_type = \"string\"\nboundaries = [1]"
        ));
        tables(&t).fails("tables[0].key_type (t)", &[alg, "key_type = \"int\""]);
    }
}

#[test]
fn collation_rules() {
    let t = table("name = \"t\"\nshard_key = \"id\"\nalgorithm = \"hash\"\ncollation = \"utf8mb4_bin\"");
    tables(&t).fails("tables[0].collation (t)", &["only key_type = \"string\""]);
    for bad in ["latin1_swedish", "utf8mb4_0900_as_cs", "", "utf8mb4 bin"] {
        let t = table(&format!(
            "name = \"t\"\nshard_key = \"s\"\nalgorithm = \"hash\"\nkey_type = \"string\"\ncollation = \"{bad}\""
        ));
        tables(&t).fails("tables[0].collation (t)", &["_ci", "_bin", "binary"]);
    }
    for good in ["binary", "BINARY", "utf8mb4_bin", "latin1_swedish_ci", "utf8mb4_0900_ai_ci"] {
        let t = table(&format!(
            "name = \"t\"\nshard_key = \"s\"\nalgorithm = \"hash\"\nkey_type = \"string\"\ncollation = \"{good}\""
        ));
        let Some(TableRule::Sharded(s)) = tables(&t).ok().table("t").cloned() else { panic!() };
        assert_eq!(s.collation, good.to_ascii_lowercase());
    }
}

#[test]
fn sequences_on_sharded_and_broadcast_tables() {
    let t = format!(
        "{}{}",
        table("name = \"Orders\"\nshard_key = \"user_id\"\nalgorithm = \"hash\"\nsequence = \"Order_ID\""),
        table("name = \"countries\"\nbroadcast = true\nsequence = \"id\"")
    );
    let cfg = tables(&t).ok();
    assert_eq!(cfg.sequence("ORDERS"), Some("Order_ID"));
    assert_eq!(cfg.sequence("countries"), Some("id"));
    assert_eq!(cfg.sequence("users"), None);
    assert_eq!(cfg.proxy.sequence_block, 1000, "default block");
    // The sequence column may be the shard key, if that is an integer.
    let t = table("name = \"t\"\nshard_key = \"id\"\nalgorithm = \"mod\"\nsequence = \"ID\"");
    assert_eq!(tables(&t).ok().sequence("t"), Some("ID"));
}

#[test]
fn bad_sequences_name_the_key() {
    let t = table("name = \"t\"\nshard_key = \"id\"\nalgorithm = \"hash\"\nsequence = \"\"");
    tables(&t).fails("tables[0].sequence (t)", &["empty"]);
    let t = table("name = \"t\"\nshard_key = \"id\"\nalgorithm = \"hash\"\nsequence = \"a`b\"");
    tables(&t).fails("tables[0].sequence (t)", &["not a usable column name"]);
    let t = table("name = \"t\"\nshard_key = \"id\"\nalgorithm = \"hash\"\nkey_type = \"string\"\nsequence = \"id\"");
    tables(&t).fails("tables[0].sequence (t)", &["also the shard key", "key_type = \"int\""]);
    let t = table("name = \"t\"\nbroadcast = true\nsequences = \"id\"");
    let msg = crate::config::validate::parse(&tables(&t).text()).unwrap_err().to_string();
    assert!(msg.contains("sequences"), "unknown key named: {msg}");
    let doc =
        Doc { proxy: "listen = \"127.0.0.1:3307\"\ndefault_shard = \"s0\"\nsequence_block = 0\n", ..Doc::default() };
    doc.fails("proxy.sequence_block", &["at least 1"]);
    let doc =
        Doc { proxy: "listen = \"127.0.0.1:3307\"\ndefault_shard = \"s0\"\nsequence_block = 5\n", ..Doc::default() };
    assert_eq!(doc.ok().proxy.sequence_block, 5);
}
