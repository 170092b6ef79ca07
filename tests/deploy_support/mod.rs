//! Reading the deployment files for `tests/deploy.rs` and `tests/deploy_monitoring.rs`.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use yaml_rust2::{Yaml, YamlLoader};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(path: &str) -> String {
    let full = root().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()))
}

pub fn yaml_docs(path: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

pub fn yaml_files(dir: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
        .map(|name| format!("{dir}/{name}"))
        .collect();
    files.sort();
    files
}

/// A string field, with the path in the panic message when it is missing.
pub fn s<'a>(node: &'a Yaml, what: &str) -> &'a str {
    node.as_str().unwrap_or_else(|| panic!("{what}: expected a string, found {node:?}"))
}

pub fn list<'a>(node: &'a Yaml, what: &str) -> &'a [Yaml] {
    node.as_vec().unwrap_or_else(|| panic!("{what}: expected a list, found {node:?}"))
}

/// A mapping of strings (labels, selectors) as a sorted map.
pub fn labels(node: &Yaml, what: &str) -> BTreeMap<String, String> {
    let hash = node.as_hash().unwrap_or_else(|| panic!("{what}: expected a mapping, found {node:?}"));
    hash.iter().map(|(k, v)| (s(k, what).to_string(), s(v, what).to_string())).collect()
}

pub fn assert_selects(selector: &BTreeMap<String, String>, target: &BTreeMap<String, String>, what: &str) {
    assert!(!selector.is_empty(), "{what}: empty selector (it would select everything)");
    for (k, v) in selector {
        assert_eq!(target.get(k), Some(v), "{what}: selector {k}={v} does not match the labels {target:?}");
    }
}

pub fn port_of(addr: &str) -> i64 {
    addr.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no port in {addr:?}"))
}
