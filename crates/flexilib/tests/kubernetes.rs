//! The Kubernetes manifests in `deploy/kubernetes`: the config their
//! ConfigMap holds is served as a pod would serve it (mounted the kubelet's
//! way, with `..data` links), and the Deployment's shutdown timing fits the
//! server's.

mod common;

use common::{workspace, ServerBuilder, TempDir};
use std::os::unix::fs::symlink;
use yaml_rust2::{Yaml, YamlLoader};

fn manifest(name: &str) -> Yaml {
    let path = workspace().join("deploy/kubernetes").join(name);
    let text = std::fs::read_to_string(&path).expect("manifest");
    YamlLoader::load_from_str(&text)
        .expect("valid YAML")
        .into_iter()
        .next()
        .expect("one document")
}

/// The container's environment variable `name`.
fn env(deployment: &Yaml, name: &str) -> Option<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_vec()?
        .iter()
        .find(|entry| entry["name"].as_str() == Some(name))
        .and_then(|entry| entry["value"].as_str().map(str::to_string))
}

#[test]
fn the_configmap_is_served_as_mounted_in_a_pod() {
    let configmap = manifest("configmap.yaml");
    let deployment = manifest("deployment.yaml");
    let mount = deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]
        ["mountPath"]
        .as_str()
        .expect("config mount")
        .to_string();
    assert_eq!(
        env(&deployment, "FLEXILIB_CONFIG").as_deref(),
        Some(format!("{mount}/proxy.ini").as_str())
    );

    // The mount as the kubelet lays it out, in a temporary directory
    // standing for the pod's file system.
    let root = TempDir::new("k8s-pod");
    let etc = root.path().join(mount.trim_start_matches('/'));
    let data = etc.join("..2026_12_07_00_00_00.1");
    std::fs::create_dir_all(&data).expect("mount dir");
    let rooted = |text: &str| {
        text.replace(&mount, &etc.display().to_string())
            .replace("/srv/", &format!("{}/srv/", root.path().display()))
    };
    let files = configmap["data"].as_hash().expect("data");
    for (key, value) in files {
        let (key, value) = (key.as_str().expect("key"), value.as_str().expect("value"));
        std::fs::write(data.join(key), rooted(value)).expect("write");
        symlink(format!("..data/{key}"), etc.join(key)).expect("link");
    }
    symlink("..2026_12_07_00_00_00.1", etc.join("..data")).expect("..data");

    let server = ServerBuilder::new(&etc.join("proxy.ini")).start();
    let response = server.get("/hello/there", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text(), "hello from FlexiLib on /hello/there\n");
}

#[test]
fn the_pod_is_given_time_for_prestop_and_the_servers_shutdown() {
    let deployment = manifest("deployment.yaml");
    let pod = &deployment["spec"]["template"]["spec"];
    let grace_period = pod["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("terminationGracePeriodSeconds");
    let pre_stop: i64 = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1]
        .as_str()
        .and_then(|seconds| seconds.parse().ok())
        .expect("preStop sleep seconds");
    let shutdown_grace: i64 = env(&deployment, "SHUTDOWN_GRACE_SECONDS")
        .and_then(|seconds| seconds.parse().ok())
        .expect("SHUTDOWN_GRACE_SECONDS");
    // The server ends an overdue shutdown 5 s after its grace period.
    assert!(
        grace_period > pre_stop + shutdown_grace + 5,
        "{grace_period} s leave no room for {pre_stop} s + {shutdown_grace} s + 5 s"
    );
}
