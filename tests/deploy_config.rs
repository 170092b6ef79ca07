//! The container deployment's shardgate config stays valid and in step with conf/shardgate.toml.

use shardgate::config::schema::ConfigFile;

fn parse(path: &str) -> ConfigFile {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{path} does not match the schema: {e}"))
}

#[test]
fn compose_config_matches_the_schema_and_the_compose_services() {
    let file = parse("deploy/compose/shardgate.toml");
    assert_eq!(file.proxy.listen, "0.0.0.0:3307");
    assert_eq!(file.proxy.admin_listen.as_deref(), Some("0.0.0.0:9107"));
    let compose =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docker-compose.yml")).unwrap();
    for shard in &file.shards {
        let servers = shard.primary.iter().chain(shard.primaries.iter().flatten()).chain(&shard.replicas);
        for backend in servers {
            let service = backend.addr.strip_suffix(":3306").expect("compose backends use port 3306");
            assert!(compose.contains(&format!("\n  {service}:\n")), "no service {service}");
        }
    }
}

/// deploy/compose/shardgate.toml is conf/shardgate.toml with only listen addresses and backend
/// hosts changed. Once conf/shardgate.toml exists, a change to one must be made to the other.
#[test]
fn compose_config_equals_the_local_config_but_for_addresses() {
    let local_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/shardgate.toml");
    if !local_path.exists() {
        eprintln!("conf/shardgate.toml does not exist yet; nothing to compare");
        return;
    }
    let mut local = parse("conf/shardgate.toml");
    let mut compose = parse("deploy/compose/shardgate.toml");
    // Map both onto the same addresses: listen ports kept, backends named by role.
    let port = |addr: &str| addr.rsplit(':').next().unwrap_or_default().to_string();
    for file in [&mut local, &mut compose] {
        file.proxy.listen = port(&file.proxy.listen);
        file.proxy.admin_listen = file.proxy.admin_listen.as_deref().map(port);
        for shard in &mut file.shards {
            if let Some(primary) = &mut shard.primary {
                primary.addr = format!("{}-primary", shard.name);
            }
            for (i, primary) in shard.primaries.iter_mut().flatten().enumerate() {
                primary.addr = format!("{}-primary{i}", shard.name);
            }
            for (i, replica) in shard.replicas.iter_mut().enumerate() {
                replica.addr = format!("{}-replica{i}", shard.name);
            }
        }
    }
    // Default key ranges are the even split the compose file spells out.
    for (l, c) in local.shards.iter_mut().zip(&compose.shards) {
        if l.key_range.is_none() {
            l.key_range = c.key_range.clone();
        }
    }
    assert_eq!(
        format!("{local:#?}"),
        format!("{compose:#?}"),
        "deploy/compose/shardgate.toml differs from conf/shardgate.toml beyond addresses"
    );
}
