//! The monitoring files stay consistent with shardgate's metrics: the Grafana dashboard
//! (conf/grafana-dashboard.json) and the monitoring part of docker-compose.yml.

mod deploy_support;

use std::collections::BTreeSet;
use std::path::Path;

use deploy_support::*;
use shardgate::config::schema::ConfigFile;
use yaml_rust2::Yaml;

// ---------------------------------------------------------------------------------------------
// Grafana dashboard

#[derive(Clone, Copy, PartialEq, Debug)]
enum Type {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric shardgate exports (the metrics endpoint's contract with the dashboard).
const METRICS: &[(&str, Type)] = &[
    ("shardgate_client_connections", Type::Gauge),
    ("shardgate_client_connections_total", Type::Counter),
    ("shardgate_queries_total", Type::Counter),
    ("shardgate_query_errors_total", Type::Counter),
    ("shardgate_query_duration_seconds", Type::Histogram),
    ("shardgate_backend_up", Type::Gauge),
    ("shardgate_backend_queries_total", Type::Counter),
    ("shardgate_pool_connections", Type::Gauge),
    ("shardgate_pool_wait_seconds", Type::Histogram),
    ("shardgate_replica_lag_seconds", Type::Gauge),
    ("shardgate_failovers_total", Type::Counter),
    ("shardgate_failover_duration_seconds", Type::Histogram),
    ("shardgate_config_reloads_total", Type::Counter),
    ("shardgate_config_last_reload_success_timestamp_seconds", Type::Gauge),
    ("shardgate_unparsed_statements_total", Type::Counter),
];

const DASHBOARD: &str = "conf/grafana-dashboard.json";

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read(DASHBOARD)).unwrap_or_else(|e| panic!("{DASHBOARD} is not valid JSON: {e}"))
}

/// Every PromQL text of the dashboard: panel targets (`expr`) and template variable queries.
fn queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "query" | "definition", serde_json::Value::String(text)) => out.push(text.clone()),
                    _ => queries(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

/// The `shardgate_*` series names a PromQL text reads.
fn series_names(expr: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("shardgate_") {
        let tail = &rest[start..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        // Part of a longer identifier (a label named foo_shardgate_x) is not a metric.
        let preceded = rest[..start].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !preceded {
            names.push(&tail[..end]);
        }
        rest = &tail[end..];
    }
    names
}

/// The metric a series name belongs to: itself, or a histogram's `_bucket`/`_sum`/`_count`.
fn metric_of(series: &str) -> Result<&'static str, String> {
    if let Some(&(name, kind)) = METRICS.iter().find(|(name, _)| *name == series) {
        return if kind == Type::Histogram {
            Err(format!("{series} is a histogram: use {series}_bucket, _sum or _count"))
        } else {
            Ok(name)
        };
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = series.strip_suffix(suffix) {
            if let Some(&(name, Type::Histogram)) = METRICS.iter().find(|(name, _)| *name == base) {
                return Ok(name);
            }
        }
    }
    Err(format!("{series} is not a shardgate metric"))
}

#[test]
fn dashboard_uses_every_metric_and_only_those() {
    let dash = dashboard();
    let mut texts = Vec::new();
    queries(&dash, &mut texts);
    let mut used = BTreeSet::new();
    for text in &texts {
        for series in series_names(text) {
            used.insert(metric_of(series).unwrap_or_else(|e| panic!("{DASHBOARD}: {e} (in {text:?})")));
        }
    }
    let unused: Vec<&str> = METRICS.iter().map(|(n, _)| *n).filter(|n| !used.contains(n)).collect();
    assert!(unused.is_empty(), "{DASHBOARD}: no panel shows {unused:?}");
    // Latency percentiles come from the histogram's buckets.
    for (name, kind) in METRICS {
        if *kind == Type::Histogram {
            let bucket = format!("{name}_bucket");
            assert!(
                texts.iter().any(|t| t.contains("histogram_quantile") && series_names(t).contains(&bucket.as_str())),
                "{DASHBOARD}: no histogram_quantile over {bucket}"
            );
        }
    }
}

#[test]
fn dashboard_panels_use_the_provisioned_datasource() {
    let text = read(DASHBOARD);
    assert!(!text.contains("${DS_"), "{DASHBOARD} needs an import-time datasource input; provisioning has none");
    let dash = dashboard();
    assert!(dash["uid"].as_str().is_some_and(|u| !u.is_empty()), "dashboard uid");
    assert!(dash.get("__inputs").is_none(), "an exported-for-import dashboard (__inputs) cannot be provisioned");

    let mut uids = BTreeSet::new();
    for file in yaml_files("deploy/compose/grafana/provisioning/datasources") {
        for doc in yaml_docs(&file) {
            for ds in list(&doc["datasources"], "datasources") {
                if ds["type"].as_str() == Some("prometheus") {
                    uids.insert(s(&ds["uid"], "datasource uid").to_string());
                }
            }
        }
    }
    assert_eq!(uids.len(), 1, "one provisioned Prometheus datasource with a uid");
    let uid = uids.into_iter().next().unwrap();

    let panels = dash["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut with_targets = 0;
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("?");
        let id = panel["id"].as_u64().unwrap_or_else(|| panic!("panel {title} has no id"));
        assert!(ids.insert(id), "panel id {id} used twice");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"].as_str(), Some(uid.as_str()), "panel {title} datasource");
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("panel {title} has no targets"));
        assert!(!targets.is_empty(), "panel {title} has no targets");
        for t in targets {
            assert!(
                t["expr"].as_str().is_some_and(|e| e.contains("shardgate_")),
                "panel {title}: a target reads no metric"
            );
            if let Some(ds) = t.get("datasource") {
                assert_eq!(ds["uid"].as_str(), Some(uid.as_str()), "panel {title}: target datasource");
            }
        }
        with_targets += 1;
    }
    assert!(with_targets >= 14, "{DASHBOARD}: {with_targets} panels, expected the full set");
    for var in dash["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(ds) = var.get("datasource") {
            assert_eq!(ds["uid"].as_str(), Some(uid.as_str()), "template variable datasource");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// docker-compose monitoring

fn compose_services() -> Yaml {
    let docs = yaml_docs("docker-compose.yml");
    docs[0]["services"].clone()
}

/// (host path, container path) of a service's bind mounts.
fn binds(service: &Yaml) -> Vec<(String, String)> {
    service["volumes"]
        .as_vec()
        .into_iter()
        .flatten()
        .map(|v| {
            let mut parts = s(v, "volume").split(':');
            (parts.next().unwrap().to_string(), parts.next().unwrap_or_default().to_string())
        })
        .collect()
}

fn publishes(service: &Yaml, port: &str) -> bool {
    service["ports"].as_vec().into_iter().flatten().any(|p| p.as_str() == Some(port))
}

fn pinned(service: &Yaml, what: &str) {
    let image = s(&service["image"], what);
    let tag = image.rsplit_once(':').map(|(_, t)| t);
    assert!(tag.is_some_and(|t| t != "latest" && !t.is_empty()), "{what}: image {image} has no pinned tag");
}

#[test]
fn compose_bind_mounts_exist() {
    let services = compose_services();
    for (name, service) in services.as_hash().expect("services") {
        for (host, _) in binds(service) {
            if let Some(rel) = host.strip_prefix("./") {
                assert!(root().join(rel).exists(), "service {}: {host} does not exist", s(name, "service"));
            }
        }
    }
}

#[test]
fn compose_prometheus_scrapes_shardgate_and_grafana_has_the_dashboard() {
    let services = compose_services();
    let admin: ConfigFile = toml::from_str(&read("deploy/compose/shardgate.toml")).unwrap();
    let admin_port = port_of(admin.proxy.admin_listen.as_deref().expect("compose config sets admin_listen"));
    assert!(!services["shardgate"].is_badvalue(), "no shardgate service");

    // Prometheus: its config file is mounted where --config.file points, and scrapes shardgate.
    let prometheus = &services["prometheus"];
    pinned(prometheus, "prometheus");
    assert!(publishes(prometheus, "9090:9090"), "Prometheus on 9090");
    let config_path = list(&prometheus["command"], "prometheus command")
        .iter()
        .find_map(|a| s(a, "argument").strip_prefix("--config.file="))
        .unwrap_or("/etc/prometheus/prometheus.yml")
        .to_string();
    let binds_p = binds(prometheus);
    let (host, _) = binds_p.iter().find(|(_, c)| *c == config_path).expect("prometheus.yml mounted at --config.file");
    let prom = &yaml_docs(host.trim_start_matches("./"))[0];
    let job = list(&prom["scrape_configs"], "scrape_configs")
        .iter()
        .find(|j| j["job_name"].as_str() == Some("shardgate"))
        .expect("a shardgate scrape job");
    assert_eq!(job["metrics_path"].as_str().unwrap_or("/metrics"), "/metrics");
    let targets: Vec<&str> =
        list(&job["static_configs"][0]["targets"], "targets").iter().map(|t| s(t, "target")).collect();
    assert_eq!(targets, [format!("shardgate:{admin_port}")], "Prometheus scrapes shardgate's admin port");
    let interval = job["scrape_interval"].as_str().or(prom["global"]["scrape_interval"].as_str());
    assert_eq!(interval, Some("5s"), "scrape every 5 s");

    // Grafana: provisioning directories and the dashboard file mounted where they are read.
    let grafana = &services["grafana"];
    pinned(grafana, "grafana");
    assert!(publishes(grafana, "3000:3000"), "Grafana on 3000");
    let binds_g = binds(grafana);
    let mounted = |container: &str| binds_g.iter().find(|(_, c)| c == container).map(|(h, _)| h.clone());
    let datasources = mounted("/etc/grafana/provisioning/datasources").expect("datasources provisioning mounted");
    assert_eq!(datasources, "./deploy/compose/grafana/provisioning/datasources");
    let dashboards = mounted("/etc/grafana/provisioning/dashboards").expect("dashboards provisioning mounted");
    let provider_dirs: Vec<String> = yaml_files(dashboards.trim_start_matches("./"))
        .iter()
        .flat_map(|f| yaml_docs(f))
        .flat_map(|d| d["providers"].as_vec().cloned().unwrap_or_default())
        .map(|p| s(&p["options"]["path"], "provider path").to_string())
        .collect();
    let (_, dash_path) = binds_g
        .iter()
        .find(|(h, _)| h == &format!("./{DASHBOARD}"))
        .unwrap_or_else(|| panic!("grafana does not mount {DASHBOARD}"));
    assert!(
        provider_dirs.iter().any(|dir| Path::new(dash_path).parent() == Some(Path::new(dir))),
        "{DASHBOARD} is mounted at {dash_path}, outside the provider paths {provider_dirs:?}"
    );

    // The datasource points at the prometheus service's port.
    for file in yaml_files(datasources.trim_start_matches("./")) {
        for doc in yaml_docs(&file) {
            for ds in list(&doc["datasources"], "datasources") {
                assert_eq!(ds["url"].as_str(), Some("http://prometheus:9090"), "{file}: datasource url");
            }
        }
    }
}
