//! The deployment files stay consistent with each other and with shardgate: the Kubernetes
//! manifests (deploy/kubernetes/). No cluster or container runs here; these checks read
//! the files and fail when an invariant a real deployment depends on breaks. The dashboard
//! and the compose monitoring are checked by `tests/deploy_monitoring.rs`.

mod deploy_support;

use std::collections::BTreeSet;

use deploy_support::*;
use shardgate::config::schema::ConfigFile;
use shardgate::config::FailoverMode;
use yaml_rust2::Yaml;

// ---------------------------------------------------------------------------------------------
// Kubernetes

const K8S: &str = "deploy/kubernetes";

/// Every document of every YAML file in deploy/kubernetes/, with its file name.
fn k8s_docs() -> Vec<(String, Yaml)> {
    let files = yaml_files(K8S);
    assert!(!files.is_empty(), "no manifests in {K8S}");
    let mut docs = Vec::new();
    for file in files {
        let parsed = yaml_docs(&file);
        assert!(!parsed.is_empty(), "{file} holds no document");
        docs.extend(parsed.into_iter().map(|doc| (file.clone(), doc)));
    }
    docs
}

/// The one document of `kind` (Secrets come only from the example file).
fn k8s_one(docs: &[(String, Yaml)], kind: &str) -> Yaml {
    let found: Vec<&Yaml> = docs.iter().filter(|(_, d)| d["kind"].as_str() == Some(kind)).map(|(_, d)| d).collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind} in {K8S}, found {}", found.len());
    found[0].clone()
}

fn shardgate_container(deployment: &Yaml) -> &Yaml {
    let containers = list(&deployment["spec"]["template"]["spec"]["containers"], "Deployment containers");
    containers
        .iter()
        .find(|c| c["name"].as_str() == Some("shardgate"))
        .expect("the Deployment has a container named shardgate")
}

/// The container port a probe or Service targetPort names (by name or number).
fn container_port<'a>(container: &'a Yaml, port: &Yaml, what: &str) -> &'a Yaml {
    let ports = list(&container["ports"], "container ports");
    ports
        .iter()
        .find(|p| match port {
            Yaml::String(name) => p["name"].as_str() == Some(name),
            Yaml::Integer(n) => p["containerPort"].as_i64() == Some(*n),
            _ => false,
        })
        .unwrap_or_else(|| panic!("{what}: port {port:?} is not a port of the container"))
}

/// The parsed manifests, with the Deployment, the ConfigMap and its shardgate.toml.
struct K8s {
    docs: Vec<(String, Yaml)>,
    deployment: Yaml,
    configmap: Yaml,
    toml: String,
}

fn k8s() -> K8s {
    let docs = k8s_docs();
    let deployment = k8s_one(&docs, "Deployment");
    let configmap = k8s_one(&docs, "ConfigMap");
    let toml = s(&configmap["data"]["shardgate.toml"], "ConfigMap data.shardgate.toml").to_string();
    K8s { docs, deployment, configmap, toml }
}

fn parse_config(text: &str) -> ConfigFile {
    toml::from_str(text).unwrap_or_else(|e| panic!("the ConfigMap's shardgate.toml does not match the schema: {e}"))
}

#[test]
fn every_manifest_has_api_version_kind_and_name() {
    let docs = k8s_docs();
    for (file, doc) in &docs {
        assert!(doc.as_hash().is_some(), "{file}: a document is not a mapping: {doc:?}");
        for key in ["apiVersion", "kind"] {
            assert!(doc[key].as_str().is_some_and(|v| !v.is_empty()), "{file}: a document has no {key}");
        }
        let name = doc["metadata"]["name"].as_str();
        assert!(name.is_some_and(|n| !n.is_empty()), "{file}: {} has no metadata.name", s(&doc["kind"], "kind"));
    }
    let kinds: BTreeSet<&str> = docs.iter().map(|(_, d)| s(&d["kind"], "kind")).collect();
    for kind in
        ["Deployment", "ConfigMap", "Service", "PodDisruptionBudget", "ServiceMonitor", "Kustomization", "Secret"]
    {
        assert!(kinds.contains(kind), "no {kind} in {K8S}");
    }
    assert_eq!(s(&k8s_one(&docs, "ServiceMonitor")["apiVersion"], "apiVersion"), "monitoring.coreos.com/v1");
    assert_eq!(s(&k8s_one(&docs, "PodDisruptionBudget")["apiVersion"], "apiVersion"), "policy/v1");
}

/// `kubectl apply -k` applies every manifest but the examples (a placeholder Secret must never
/// be applied by accident), and nothing that does not exist.
#[test]
fn kustomization_lists_every_manifest_but_the_examples() {
    let k = yaml_docs(&format!("{K8S}/kustomization.yaml"));
    let listed: BTreeSet<String> =
        list(&k[0]["resources"], "kustomization resources").iter().map(|r| s(r, "resource").to_string()).collect();
    let expected: BTreeSet<String> = yaml_files(K8S)
        .into_iter()
        .map(|f| f.rsplit('/').next().unwrap().to_string())
        .filter(|f| f != "kustomization.yaml" && !f.contains(".example."))
        .collect();
    assert_eq!(listed, expected, "kustomization.yaml resources");
    // The image the Deployment names is the one kustomize rewrites.
    let images = list(&k[0]["images"], "kustomization images");
    let k8s = k8s();
    let image = s(&shardgate_container(&k8s.deployment)["image"], "container image");
    assert!(images.iter().any(|i| i["name"].as_str() == Some(image)), "kustomization images do not rewrite {image}");
}

#[test]
fn deployment_probes_drain_and_security() {
    let K8s { deployment, toml, .. } = k8s();
    let spec = &deployment["spec"];
    assert!(spec["replicas"].as_i64().is_some_and(|n| n >= 2), "several replicas, for a PDB to keep some");
    let pod = &spec["template"]["spec"];
    let c = shardgate_container(&deployment);

    // Probes: HTTP on the container port that is the config's admin port.
    let file = parse_config(&toml);
    let admin_port = port_of(file.proxy.admin_listen.as_deref().expect("the ConfigMap sets admin_listen"));
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe} path");
        let port = container_port(c, &get["port"], probe);
        assert_eq!(port["containerPort"].as_i64(), Some(admin_port), "{probe} is not on the admin port");
    }

    // Drain: preStop sleeps, then SIGTERM drains for up to shutdown_timeout_s; the grace
    // period must cover both or the kubelet kills statements mid-drain.
    let pre_stop = &c["lifecycle"]["preStop"];
    let sleep_s = if let Some(seconds) = pre_stop["sleep"]["seconds"].as_i64() {
        seconds
    } else {
        let command: Vec<&str> =
            list(&pre_stop["exec"]["command"], "preStop exec command").iter().map(|a| s(a, "argument")).collect();
        assert_eq!(command.first(), Some(&"sleep"), "preStop sleeps: {command:?}");
        command[1].parse().expect("preStop sleep takes whole seconds")
    };
    assert!(sleep_s > 0, "preStop sleeps a few seconds");
    let raw: toml::Table = toml::from_str(&toml).unwrap();
    let shutdown_s = raw["proxy"].get("shutdown_timeout_s").and_then(|v| v.as_integer()).unwrap_or(30);
    let grace = pod["terminationGracePeriodSeconds"].as_i64().expect("terminationGracePeriodSeconds set");
    assert!(
        grace > sleep_s + shutdown_s,
        "terminationGracePeriodSeconds {grace} must exceed preStop {sleep_s} s + shutdown_timeout_s {shutdown_s}"
    );

    // Security and resources.
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true), "runAsNonRoot");
    let uid = pod["securityContext"]["runAsUser"].as_i64().expect("runAsUser set");
    assert!(uid > 0, "runAsUser is not root");
    let user_line = read("Dockerfile").lines().rev().find(|l| l.starts_with("USER ")).map(str::to_string);
    assert_eq!(
        user_line.as_deref().and_then(|l| l[5..].split(':').next()),
        Some(uid.to_string().as_str()),
        "the image's numeric USER is the pod's runAsUser"
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "readOnlyRootFilesystem");
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false), "allowPrivilegeEscalation");
    let drop: Vec<&str> = list(&sc["capabilities"]["drop"], "capabilities.drop").iter().map(|d| s(d, "cap")).collect();
    assert_eq!(drop, ["ALL"], "drop ALL capabilities");
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(!c["resources"][kind][resource].is_badvalue(), "resources.{kind}.{resource} missing");
        }
    }
}

#[test]
fn selectors_match_the_pod_labels_and_ports_line_up() {
    let K8s { docs, deployment, .. } = k8s();
    let pod_labels = labels(&deployment["spec"]["template"]["metadata"]["labels"], "pod labels");
    assert_selects(
        &labels(&deployment["spec"]["selector"]["matchLabels"], "Deployment selector"),
        &pod_labels,
        "Deployment",
    );
    let pdb = k8s_one(&docs, "PodDisruptionBudget");
    assert_selects(
        &labels(&pdb["spec"]["selector"]["matchLabels"], "PDB selector"),
        &pod_labels,
        "PodDisruptionBudget",
    );
    let service = k8s_one(&docs, "Service");
    assert_selects(&labels(&service["spec"]["selector"], "Service selector"), &pod_labels, "Service");
    // A ServiceMonitor selects Services, by their labels; ours carry the pod labels too.
    let monitor = k8s_one(&docs, "ServiceMonitor");
    let monitor_selector = labels(&monitor["spec"]["selector"]["matchLabels"], "ServiceMonitor selector");
    assert_selects(&monitor_selector, &labels(&service["metadata"]["labels"], "Service labels"), "ServiceMonitor");
    assert_selects(&monitor_selector, &pod_labels, "ServiceMonitor (pod labels)");

    let c = shardgate_container(&deployment);
    let service_ports = list(&service["spec"]["ports"], "Service ports");
    let mut names = BTreeSet::new();
    for p in service_ports {
        let name = s(&p["name"], "Service port name");
        names.insert(name);
        let target = container_port(c, &p["targetPort"], &format!("Service port {name}"));
        assert_eq!(p["port"].as_i64(), target["containerPort"].as_i64(), "Service port {name} and its container port");
    }
    for e in list(&monitor["spec"]["endpoints"], "ServiceMonitor endpoints") {
        let port = s(&e["port"], "ServiceMonitor endpoint port");
        assert!(names.contains(port), "ServiceMonitor scrapes port {port:?}, which the Service does not name");
        assert_eq!(e["path"].as_str(), Some("/metrics"), "ServiceMonitor path");
        let port_number = service_ports.iter().find(|p| p["name"].as_str() == Some(port)).unwrap()["port"].as_i64();
        assert_eq!(port_number, Some(9107), "ServiceMonitor scrapes the admin port");
    }
}

#[test]
fn configmap_config_validates_and_matches_the_deployment() {
    let K8s { docs, deployment, configmap, toml } = k8s();
    let file = parse_config(&toml);
    let config = shardgate::config::validate::validate(file.clone())
        .unwrap_or_else(|e| panic!("the ConfigMap's shardgate.toml is invalid: {e}"));
    assert_eq!(config.proxy.listen, "0.0.0.0:3307");
    assert_eq!(config.proxy.admin_listen.as_deref(), Some("0.0.0.0:9107"));
    // Several replicas share this file: only `follow` is safe until failover is coordinated.
    assert_eq!(config.health.failover, FailoverMode::Follow, "the ConfigMap must use failover = \"follow\"");

    // Container ports are the config's listen ports.
    let c = shardgate_container(&deployment);
    let ports: BTreeSet<i64> =
        list(&c["ports"], "container ports").iter().map(|p| p["containerPort"].as_i64().unwrap()).collect();
    let wanted: BTreeSet<i64> =
        [port_of(&config.proxy.listen), port_of(config.proxy.admin_listen.as_deref().unwrap())].into();
    assert_eq!(ports, wanted, "container ports vs [proxy] listen / admin_listen");

    // The ConfigMap is mounted as the directory the image reads its config from, never with
    // subPath (a subPath mount does not see the kubelet's updates, so no hot reload).
    let volumes = list(&deployment["spec"]["template"]["spec"]["volumes"], "volumes");
    let mounts = list(&c["volumeMounts"], "volumeMounts");
    for m in mounts {
        assert!(m["subPath"].is_badvalue() && m["subPathExpr"].is_badvalue(), "volumeMount with subPath: {m:?}");
    }
    let mount_of = |volume: &Yaml| {
        let name = s(&volume["name"], "volume name");
        mounts.iter().find(|m| m["name"].as_str() == Some(name)).unwrap_or_else(|| panic!("volume {name} not mounted"))
    };
    let config_volume = volumes
        .iter()
        .find(|v| v["configMap"]["name"].as_str() == configmap["metadata"]["name"].as_str())
        .expect("a volume of the ConfigMap");
    assert_eq!(mount_of(config_volume)["mountPath"].as_str(), Some("/etc/shardgate"));
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains("\"--config\", \"/etc/shardgate/shardgate.toml\""),
        "the image reads /etc/shardgate/shardgate.toml"
    );

    // The admin token file named in the config (commented out until the key exists in the
    // schema) is the key of the Secret mounted at its directory.
    let line = toml
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .find(|l| l.starts_with("admin_token_file"))
        .expect("the ConfigMap names admin_token_file (commented out until the schema has it)");
    let token_path: String = toml::from_str::<toml::Table>(line).unwrap()["admin_token_file"].as_str().unwrap().into();
    let (dir, key) = token_path.rsplit_once('/').unwrap();
    let secret_volume = volumes.iter().find(|v| !v["secret"].is_badvalue()).expect("a Secret volume");
    let secret_name = s(&secret_volume["secret"]["secretName"], "secretName");
    assert_eq!(secret_name, "shardgate-admin");
    assert_eq!(mount_of(secret_volume)["mountPath"].as_str(), Some(dir), "Secret mount vs admin_token_file");
    let secret = k8s_one(&docs, "Secret");
    assert_eq!(secret["metadata"]["name"].as_str(), Some(secret_name));
    assert!(!secret["stringData"][key].is_badvalue(), "the example Secret has no key {key}");
    let monitor = k8s_one(&docs, "ServiceMonitor");
    for e in list(&monitor["spec"]["endpoints"], "ServiceMonitor endpoints") {
        let credentials = &e["authorization"]["credentials"];
        if !credentials.is_badvalue() {
            assert_eq!(credentials["name"].as_str(), Some(secret_name), "ServiceMonitor token Secret");
            assert_eq!(credentials["key"].as_str(), Some(key), "ServiceMonitor token key");
        }
    }
}
