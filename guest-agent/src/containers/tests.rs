//! Unit tests of the container service: parsing helpers, and the lifecycle and
//! network state machines on the fake runtime and the fake network datapath and
//! firewall. No root, no kernel features, no process started.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, ImageConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};

use super::*;
use crate::events::Events;
use crate::images::ImageService;
use crate::network::datapath::fake::FakeDatapath;
use crate::network::firewall::fake::FakeFirewall;
use crate::network::{CreateRequest, NetworkService};
use crate::runtime::fake::FakeRuntime;

#[test]
fn signals() {
    assert_eq!(
        parse_signal("TERM").unwrap(),
        nix::sys::signal::Signal::SIGTERM
    );
    assert_eq!(
        parse_signal("sigkill").unwrap(),
        nix::sys::signal::Signal::SIGKILL
    );
    assert_eq!(parse_signal("1").unwrap(), nix::sys::signal::Signal::SIGHUP);
    assert!(parse_signal("NOPE").is_err());
}

#[test]
fn wait_conditions() {
    assert_eq!(
        WaitCondition::parse(None).unwrap(),
        WaitCondition::NotRunning
    );
    assert_eq!(
        WaitCondition::parse(Some("removed")).unwrap(),
        WaitCondition::Removed
    );
    assert!(WaitCondition::parse(Some("x")).is_err());
}

/// One engine's container service over fakes, in a scratch directory.
struct Engine {
    tmp: tempfile::TempDir,
    svc: Arc<ContainerService>,
    runtime: Arc<FakeRuntime>,
    datapath: Arc<FakeDatapath>,
    firewall: Arc<FakeFirewall>,
    network: Arc<NetworkService>,
    images: ImageService,
    events: Arc<Events>,
}

const BRIDGE: &str = "berthfake0";

impl Engine {
    async fn new() -> Engine {
        let tmp = tempfile::tempdir().unwrap();
        let events = Arc::new(Events::default());
        let images = ImageService::open(&tmp.path().join("image"), vec![]).unwrap();
        // A one-file image: the fake runtime never runs it, the bundle only needs a
        // command and layers.
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o755);
        h.set_cksum();
        tar.append_data(&mut h, "bin/app", &[][..]).unwrap();
        let tar = tar.into_inner().unwrap();
        let config = ImageConfig {
            cmd: Some(vec!["/bin/app".into()]),
            ..Default::default()
        };
        let id = images.import(&tar[..], config, "-").unwrap();
        images.tag(&id, "app", Some("latest")).unwrap();
        let runtime = Arc::new(FakeRuntime::default());
        let datapath = Arc::new(FakeDatapath::default());
        let firewall = Arc::new(FakeFirewall::default());
        let (svc, network) =
            Self::open_service(tmp.path(), &events, &runtime, &datapath, &firewall).await;
        Engine {
            tmp,
            svc,
            runtime,
            datapath,
            firewall,
            network,
            images,
            events,
        }
    }

    async fn open_network(
        root: &std::path::Path,
        datapath: &Arc<FakeDatapath>,
        firewall: &Arc<FakeFirewall>,
    ) -> Arc<NetworkService> {
        NetworkService::open_with(root, BRIDGE, datapath.clone(), firewall.clone())
            .await
            .unwrap()
    }

    async fn open_service(
        root: &std::path::Path,
        events: &Arc<Events>,
        runtime: &Arc<FakeRuntime>,
        datapath: &Arc<FakeDatapath>,
        firewall: &Arc<FakeFirewall>,
    ) -> (Arc<ContainerService>, Arc<NetworkService>) {
        let network = Self::open_network(root, datapath, firewall).await;
        let volumes = Arc::new(VolumeService::open(root.join("volumes"), events.clone()).unwrap());
        let svc = ContainerService::open(
            root.join("containers"),
            None,
            events.clone(),
            network.clone(),
            volumes,
            None,
            runtime.clone(),
        )
        .unwrap();
        (svc, network)
    }

    /// The engine restarts: a new service over the same state and the same "kernel".
    async fn restart(&self) -> Arc<ContainerService> {
        self.runtime.forget_parents();
        Self::open_service(
            self.tmp.path(),
            &self.events,
            &self.runtime,
            &self.datapath,
            &self.firewall,
        )
        .await
        .0
    }

    fn create(&self, name: &str, hc: HostConfig) -> String {
        self.create_body(
            name,
            ContainerCreateBody {
                image: Some("app".into()),
                host_config: Some(hc),
                ..Default::default()
            },
        )
    }

    fn create_body(&self, name: &str, body: ContainerCreateBody) -> String {
        self.svc.create(&self.images, Some(name), body).unwrap()
    }

    fn mounted(&self) -> usize {
        self.runtime.mounted().len()
    }

    fn namespaces(&self) -> usize {
        self.datapath.state().namespaces.len()
    }

    fn veths(&self) -> usize {
        self.datapath.state().veths.len()
    }

    fn actions(&self, id: &str) -> Vec<String> {
        let (past, _) = self.events.subscribe(Some(0));
        past.into_iter()
            .filter(|m| m.actor.as_ref().and_then(|a| a.id.as_deref()) == Some(id))
            .filter_map(|m| m.action)
            .collect()
    }
}

/// Waits (bounded) until the container's record satisfies `f`.
async fn until(svc: &ContainerService, id: &str, f: impl Fn(&ContainerRecord) -> bool) {
    for _ in 0..300 {
        if svc.record(id).is_ok_and(|r| f(&r)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "container {id} never reached the expected state: {:?}",
        svc.record(id).map(|r| r.state)
    );
}

fn policy(name: RestartPolicyNameEnum, max: i64) -> HostConfig {
    HostConfig {
        restart_policy: Some(RestartPolicy {
            name: Some(name),
            maximum_retry_count: Some(max),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_start_exit_remove() {
    let e = Engine::new().await;
    let id = e.create("web", HostConfig::default());
    assert_eq!(e.svc.record("web").unwrap().state.status, Status::Created);
    assert_eq!(e.svc.resolve(&id[..6]).unwrap(), id);

    e.svc.start("web").await.unwrap();
    let rec = e.svc.record(&id).unwrap();
    assert_eq!(rec.state.status, Status::Running);
    assert_eq!(Some(rec.state.pid), e.runtime.pid_of(&id));
    assert!(rec.networks["bridge"]
        .ip_address
        .as_deref()
        .is_some_and(|ip| !ip.is_empty()));
    assert_eq!((e.mounted(), e.namespaces(), e.veths()), (1, 1, 1));
    assert!(matches!(
        e.svc.start("web").await,
        Err(ContainerError::NotModified)
    ));

    let waited = e.svc.wait("web", WaitCondition::NotRunning).unwrap();
    assert!(e.runtime.exit(&id, 3));
    assert_eq!(waited.await, (3, String::new()));
    until(&e.svc, &id, |r| r.state.status == Status::Exited).await;
    let rec = e.svc.record(&id).unwrap();
    assert_eq!(rec.state.exit_code, 3);
    assert!(rec.state.finished_at.is_some());
    // The exit released what the start took.
    assert_eq!((e.mounted(), e.namespaces(), e.veths()), (0, 0, 0));
    assert!(rec.networks["bridge"]
        .ip_address
        .as_deref()
        .is_none_or(str::is_empty));

    e.svc.remove("web", false, false).await.unwrap();
    assert!(matches!(
        e.svc.record(&id),
        Err(ContainerError::NotFound(_))
    ));
    assert!(!e.tmp.path().join("containers").join(&id).exists());
    assert_eq!(e.actions(&id), ["create", "start", "die", "destroy"]);
}

#[tokio::test]
async fn stop_signals_then_records_the_exit() {
    let e = Engine::new().await;
    let id = e.create("ss", HostConfig::default());
    e.svc.start(&id).await.unwrap();
    let pid = e.runtime.pid_of(&id).unwrap();
    e.svc.stop(&id, Some(5), None).await.unwrap();
    assert_eq!(
        e.runtime.signals(),
        [(pid, nix::sys::signal::Signal::SIGTERM)]
    );
    until(&e.svc, &id, |r| r.state.status == Status::Exited).await;
    assert_eq!(e.svc.record(&id).unwrap().state.exit_code, 143);
    assert!(matches!(
        e.svc.stop(&id, None, None).await,
        Err(ContainerError::NotModified)
    ));
    assert!(matches!(
        e.svc.kill(&id, None).await,
        Err(ContainerError::Conflict(_))
    ));
    // As dockerd: the signal is a `kill` event before the exit's `die` and `stop`;
    // a restart ends with `restart`.
    e.svc.restart(&id, Some(5), None).await.unwrap();
    assert_eq!(
        e.actions(&id),
        ["create", "start", "kill", "die", "stop", "start", "restart"]
    );
}

#[tokio::test]
async fn a_running_container_needs_force_to_be_removed() {
    let e = Engine::new().await;
    let id = e.create("ff", HostConfig::default());
    e.svc.start(&id).await.unwrap();
    assert!(matches!(
        e.svc.remove(&id, false, false).await,
        Err(ContainerError::Conflict(_))
    ));
    e.svc.remove(&id, true, false).await.unwrap();
    assert!(e.runtime.pid_of(&id).is_none());
    assert_eq!((e.mounted(), e.namespaces(), e.veths()), (0, 0, 0));
}

#[tokio::test]
async fn a_failed_runtime_start_is_rolled_back_and_recorded() {
    let e = Engine::new().await;
    let id = e.create("xx", HostConfig::default());
    e.runtime.fail_next_start(127, "no such file");
    match e.svc.start(&id).await {
        Err(ContainerError::Start { message, exit_code }) => {
            assert_eq!(exit_code, 127);
            assert!(
                message.contains("\"/bin/app\": executable file not found in $PATH"),
                "{message}"
            );
        }
        other => panic!("expected a start error, got {other:?}"),
    }
    let rec = e.svc.record(&id).unwrap();
    // As dockerd: never started, so still created; the code and message are kept.
    assert_eq!(rec.state.status, Status::Created);
    assert_eq!(rec.state.exit_code, 127);
    assert_eq!((e.mounted(), e.namespaces(), e.veths()), (0, 0, 0));
    // Nothing left behind stands in the way of the next start.
    e.svc.start(&id).await.unwrap();
    assert_eq!((e.mounted(), e.namespaces(), e.veths()), (1, 1, 1));
}

#[tokio::test]
async fn a_failed_rootfs_mount_is_rolled_back() {
    let e = Engine::new().await;
    let id = e.create("mm", HostConfig::default());
    e.runtime.fail_mounts(true);
    let err = e.svc.start(&id).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("mounting the container's root filesystem"),
        "{err}"
    );
    assert_eq!((e.mounted(), e.namespaces(), e.veths()), (0, 0, 0));
    let rec = e.svc.record(&id).unwrap();
    assert_eq!(rec.state.status, Status::Created);
    assert!(rec.networks["bridge"]
        .ip_address
        .as_deref()
        .is_none_or(str::is_empty));
    e.runtime.fail_mounts(false);
    e.svc.start(&id).await.unwrap();
}

#[tokio::test]
async fn a_failed_network_attach_is_rolled_back() {
    let e = Engine::new().await;
    let id = e.create("nn", HostConfig::default());
    e.datapath.state().fail_plugs.insert(BRIDGE.to_string());
    assert!(e.svc.start(&id).await.is_err());
    assert_eq!((e.mounted(), e.namespaces(), e.veths()), (0, 0, 0));
    assert!(e.runtime.pid_of(&id).is_none());
    e.datapath.state().fail_plugs.clear();
    e.svc.start(&id).await.unwrap();
    assert_eq!((e.mounted(), e.namespaces(), e.veths()), (1, 1, 1));
}

#[tokio::test]
async fn a_failed_start_of_an_auto_remove_container_removes_it() {
    let e = Engine::new().await;
    let id = e.create(
        "rm",
        HostConfig {
            auto_remove: Some(true),
            ..Default::default()
        },
    );
    e.runtime.fail_next_start(255, "boom");
    assert!(e.svc.start(&id).await.is_err());
    assert!(matches!(
        e.svc.record(&id),
        Err(ContainerError::NotFound(_))
    ));
    assert_eq!((e.mounted(), e.namespaces(), e.veths()), (0, 0, 0));
}

#[tokio::test]
async fn auto_remove_takes_the_container_when_it_exits() {
    let e = Engine::new().await;
    let id = e.create(
        "once",
        HostConfig {
            auto_remove: Some(true),
            ..Default::default()
        },
    );
    let removed = e.svc.wait(&id, WaitCondition::Removed).unwrap();
    e.svc.start(&id).await.unwrap();
    e.runtime.exit(&id, 0);
    tokio::time::timeout(Duration::from_secs(5), removed)
        .await
        .unwrap();
    assert!(e.svc.record(&id).is_err());
}

#[tokio::test]
async fn on_failure_restarts_up_to_its_maximum() {
    let e = Engine::new().await;
    let id = e.create("flaky", policy(RestartPolicyNameEnum::ON_FAILURE, 2));
    e.svc.start(&id).await.unwrap();
    for n in 1..=2 {
        e.runtime.exit(&id, 1);
        until(&e.svc, &id, |r| r.restart_count == n && r.running()).await;
    }
    e.runtime.exit(&id, 1);
    until(&e.svc, &id, |r| r.state.status == Status::Exited).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let rec = e.svc.record(&id).unwrap();
    assert_eq!((rec.restart_count, rec.state.status), (2, Status::Exited));
}

#[tokio::test]
async fn on_failure_leaves_a_clean_exit_alone_and_always_does_not() {
    let e = Engine::new().await;
    let on_failure = e.create("ok", policy(RestartPolicyNameEnum::ON_FAILURE, 0));
    let always = e.create("always", policy(RestartPolicyNameEnum::ALWAYS, 0));
    let no = e.create("no", policy(RestartPolicyNameEnum::NO, 0));
    for id in [&on_failure, &always, &no] {
        e.svc.start(id).await.unwrap();
        e.runtime.exit(id, 0);
    }
    until(&e.svc, &always, |r| r.restart_count == 1 && r.running()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in [&on_failure, &no] {
        let rec = e.svc.record(id).unwrap();
        assert_eq!((rec.restart_count, rec.state.status), (0, Status::Exited));
    }
}

#[tokio::test]
async fn a_stopped_always_container_stays_stopped() {
    let e = Engine::new().await;
    let id = e.create("aa", policy(RestartPolicyNameEnum::ALWAYS, 0));
    e.svc.start(&id).await.unwrap();
    e.svc.stop(&id, Some(1), None).await.unwrap();
    until(&e.svc, &id, |r| r.state.status == Status::Exited).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rec = e.svc.record(&id).unwrap();
    assert!(rec.manually_stopped);
    assert_eq!((rec.restart_count, rec.state.status), (0, Status::Exited));
}

#[test]
fn restart_backoff_doubles_and_is_capped() {
    let mut rec = test_record();
    rec.host_config = policy(RestartPolicyNameEnum::ALWAYS, 0);
    let delays: Vec<u128> = (0..10)
        .map(|n| {
            rec.restart_count = n;
            lifecycle::restart_delay(&rec, 0).unwrap().as_millis()
        })
        .collect();
    assert_eq!(
        delays,
        [100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000]
    );
    rec.manually_stopped = true;
    assert_eq!(lifecycle::restart_delay(&rec, 1), None);
}

/// A record to compute with when no engine is needed.
fn test_record() -> ContainerRecord {
    ContainerRecord {
        macs: Default::default(),
        id: "0".repeat(64),
        name: "t".into(),
        created: crate::clock::now(),
        image: "app".into(),
        image_id: String::new(),
        config: Default::default(),
        host_config: Default::default(),
        state: record::RunState::created(),
        restart_count: 0,
        layers: vec![],
        manually_stopped: false,
        networks: Default::default(),
        mounts: vec![],
    }
}

#[tokio::test]
async fn a_restarted_engine_adopts_running_containers_and_sees_them_exit() {
    let e = Engine::new().await;
    let id = e.create("long", HostConfig::default());
    e.svc.start(&id).await.unwrap();
    let pid = e.runtime.pid_of(&id).unwrap();

    let again = e.restart().await;
    let rec = again.record(&id).unwrap();
    assert_eq!((rec.state.status, rec.state.pid), (Status::Running, pid));
    e.runtime.exit(&id, 7);
    until(&again, &id, |r| r.state.status == Status::Exited).await;
    assert_eq!(again.record(&id).unwrap().state.exit_code, 7);
    assert_eq!(e.mounted(), 0);
}

#[tokio::test]
async fn a_container_that_exited_while_the_engine_was_down_is_marked_exited() {
    let e = Engine::new().await;
    let id = e.create("gone", HostConfig::default());
    e.svc.start(&id).await.unwrap();
    e.runtime.forget_parents();
    e.runtime.exit(&id, 4);
    let again = e.restart().await;
    let rec = again.record(&id).unwrap();
    assert_eq!((rec.state.status, rec.state.exit_code), (Status::Exited, 4));
}

#[tokio::test]
async fn an_always_container_comes_back_with_the_engine() {
    let e = Engine::new().await;
    let id = e.create("svc", policy(RestartPolicyNameEnum::ALWAYS, 0));
    e.svc.start(&id).await.unwrap();
    e.runtime.forget_parents();
    e.runtime.exit(&id, 0);
    let again = e.restart().await;
    until(&again, &id, |r| r.running()).await;
    assert!(e.runtime.pid_of(&id).is_some());
}

#[tokio::test]
async fn connect_and_disconnect_a_running_container() {
    let e = Engine::new().await;
    e.network
        .create(CreateRequest {
            name: "backend".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let id = e.create("api", HostConfig::default());
    e.svc.start(&id).await.unwrap();
    assert_eq!(e.veths(), 1);

    e.svc
        .connect(&id, "backend", EndpointSettings::default())
        .await
        .unwrap();
    let rec = e.svc.record(&id).unwrap();
    let ip = rec.networks["backend"]
        .ip_address
        .clone()
        .unwrap_or_default();
    assert!(!ip.is_empty(), "{:?}", rec.networks);
    assert_eq!(e.veths(), 2);
    assert!(matches!(
        e.svc
            .connect(&id, "backend", EndpointSettings::default())
            .await,
        Err(ContainerError::Conflict(_))
    ));

    e.svc.disconnect(&id, "backend", false).await.unwrap();
    assert!(!e.svc.record(&id).unwrap().networks.contains_key("backend"));
    assert_eq!(e.veths(), 1);
    assert!(matches!(
        e.svc.disconnect(&id, "backend", false).await,
        Err(ContainerError::Conflict(_))
    ));
}

#[tokio::test]
async fn a_created_container_gets_a_connected_network_at_start() {
    let e = Engine::new().await;
    e.network
        .create(CreateRequest {
            name: "later".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let id = e.create("cc", HostConfig::default());
    e.svc
        .connect(&id, "later", EndpointSettings::default())
        .await
        .unwrap();
    assert_eq!(e.veths(), 0);
    e.svc.start(&id).await.unwrap();
    assert_eq!(e.veths(), 2);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn publishing(port: u16) -> ContainerCreateBody {
    let binding = PortBinding {
        host_ip: Some("127.0.0.1".into()),
        host_port: Some(port.to_string()),
    };
    ContainerCreateBody {
        image: Some("app".into()),
        exposed_ports: Some(vec!["80/tcp".to_string()]),
        host_config: Some(HostConfig {
            port_bindings: Some(HashMap::from([("80/tcp".to_string(), Some(vec![binding]))])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn published_ports_are_bound_while_running_and_conflicts_roll_back() {
    let e = Engine::new().await;
    let port = free_port();
    let a = e.create_body("aa", publishing(port));
    let b = e.create_body("bb", publishing(port));
    e.svc.start(&a).await.unwrap();
    let bound = e.network.ports.of(&a);
    assert_eq!(bound.len(), 1, "{bound:?}");
    assert_eq!(bound[0].host_port, port);
    let doc = e.svc.inspect(&a).unwrap();
    let ports = doc
        .network_settings
        .and_then(|n| n.ports)
        .unwrap_or_default();
    assert!(ports.contains_key("80/tcp"), "{ports:?}");

    // The same host port for a second container: dockerd's error, and b is left as
    // it was.
    let err = e.svc.start(&b).await.unwrap_err();
    assert!(
        err.to_string().contains("port is already allocated"),
        "{err}"
    );
    assert!(e.network.ports.of(&b).is_empty());
    assert_eq!(e.svc.record(&b).unwrap().state.status, Status::Created);
    assert_eq!((e.mounted(), e.namespaces()), (1, 1));

    // Once a exits its port is free for b.
    e.runtime.exit(&a, 0);
    until(&e.svc, &a, |r| r.state.status == Status::Exited).await;
    assert!(e.network.ports.of(&a).is_empty());
    e.svc.start(&b).await.unwrap();
    assert_eq!(e.network.ports.of(&b).len(), 1);
}

#[tokio::test]
async fn pause_and_update_go_through_the_runtime() {
    let e = Engine::new().await;
    let id = e.create("pp", HostConfig::default());
    assert!(matches!(
        e.svc.set_paused(&id, true).await,
        Err(ContainerError::Conflict(_))
    ));
    e.svc.start(&id).await.unwrap();
    e.svc.set_paused(&id, true).await.unwrap();
    assert!(e.runtime.paused().contains(&id));
    assert!(e.svc.record(&id).unwrap().state.paused);
    assert!(matches!(
        e.svc.set_paused(&id, true).await,
        Err(ContainerError::Conflict(_))
    ));
    // Stopping a paused container thaws it first.
    e.svc.stop(&id, Some(1), None).await.unwrap();
    assert!(e.runtime.paused().is_empty());

    e.svc.start(&id).await.unwrap();
    e.svc
        .update_limits(
            &id,
            bollard_stubs::models::ContainerUpdateBody {
                memory: Some(64 << 20),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(e.runtime.updates(), std::slice::from_ref(&id));
    assert_eq!(
        e.svc.record(&id).unwrap().host_config.memory,
        Some(64 << 20)
    );
}

// Healthchecks: the monitor on the fake runtime, probes decided by the fake's exec
// outcomes, with intervals of milliseconds.

const PROBE: &str = "/bin/sh -c check";

fn ms(n: i64) -> Option<i64> {
    Some(n * 1_000_000)
}

fn with_health(hc: bollard_stubs::models::HealthConfig) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some("app".into()),
        healthcheck: Some(bollard_stubs::models::HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), "check".into()]),
            ..hc
        }),
        ..Default::default()
    }
}

fn fast(retries: i64) -> bollard_stubs::models::HealthConfig {
    bollard_stubs::models::HealthConfig {
        interval: ms(20),
        timeout: Some(5_000_000_000),
        retries: Some(retries),
        ..Default::default()
    }
}

fn health_of(svc: &ContainerService, id: &str) -> Option<bollard_stubs::models::HealthStatusEnum> {
    svc.record(id).ok()?.state.health?.status
}

async fn until_health(
    svc: &ContainerService,
    id: &str,
    want: bollard_stubs::models::HealthStatusEnum,
) {
    until(svc, id, |r| {
        r.state.health.as_ref().and_then(|h| h.status) == Some(want)
    })
    .await;
}

/// No probe exec left behind: none listed, none running, no directory.
async fn no_probe_left(e: &Engine, id: &str) {
    for _ in 0..300 {
        let listed = e.svc.execs.lock().unwrap().len();
        let dirs = std::fs::read_dir(e.tmp.path().join("containers").join(id).join("exec"))
            .map(|d| d.count())
            .unwrap_or(0);
        if listed == 0 && dirs == 0 && e.runtime.running_execs() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("a probe exec was left behind");
}

use bollard_stubs::models::HealthStatusEnum as H;

#[tokio::test]
async fn a_failing_probe_turns_unhealthy_after_its_retries_and_recovers() {
    let e = Engine::new().await;
    e.runtime.exec_outcome(PROBE, Some((1, "not yet")));
    let id = e.create_body("hc", with_health(fast(3)));
    assert_eq!(e.svc.inspect(&id).unwrap().state.unwrap().health, None);
    e.svc.start(&id).await.unwrap();
    assert_eq!(health_of(&e.svc, &id), Some(H::STARTING));
    until_health(&e.svc, &id, H::UNHEALTHY).await;
    let h = e.svc.record(&id).unwrap().state.health.unwrap();
    assert_eq!(h.failing_streak, Some(3));
    let last = h.log.unwrap().pop().unwrap();
    assert_eq!(
        (last.exit_code, last.output.as_deref()),
        (Some(1), Some("not yet"))
    );
    // Any code but 0 is a failure too; 0 makes it healthy again.
    e.runtime.exec_outcome(PROBE, Some((0, "ok")));
    until_health(&e.svc, &id, H::HEALTHY).await;
    assert_eq!(
        e.svc
            .record(&id)
            .unwrap()
            .state
            .health
            .unwrap()
            .failing_streak,
        Some(0)
    );
    let doc = e.svc.inspect(&id).unwrap();
    assert_eq!(doc.state.unwrap().health.unwrap().status, Some(H::HEALTHY));
    let rows = e
        .svc
        .list(&views::ListFilters {
            health: vec!["healthy".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].status.as_deref().unwrap().ends_with(" (healthy)"));
    assert!(e
        .svc
        .list(&views::ListFilters {
            health: vec!["none".into()],
            ..Default::default()
        })
        .unwrap()
        .is_empty());

    let actions = e.actions(&id);
    let health: Vec<&String> = actions.iter().filter(|a| a.starts_with("health")).collect();
    assert_eq!(
        health,
        ["health_status: unhealthy", "health_status: healthy"]
    );
    for a in [
        "exec_create: /bin/sh -c check",
        "exec_start: /bin/sh -c check",
        "exec_die",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} missing from {actions:?}"
        );
    }
    e.svc.stop(&id, Some(1), None).await.unwrap();
    no_probe_left(&e, &id).await;
    // A stopped container's monitor is gone, and dockerd calls it unhealthy.
    assert_eq!(health_of(&e.svc, &id), Some(H::UNHEALTHY));
}

#[tokio::test]
async fn the_start_period_forgives_failures_until_a_success() {
    let e = Engine::new().await;
    e.runtime.exec_outcome(PROBE, Some((1, "")));
    let id = e.create_body(
        "sp",
        with_health(bollard_stubs::models::HealthConfig {
            start_period: Some(60_000_000_000),
            start_interval: ms(20),
            ..fast(1)
        }),
    );
    e.svc.start(&id).await.unwrap();
    for _ in 0..300 {
        if e.runtime.execs_of(&id).len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        e.runtime.execs_of(&id).len() >= 4,
        "the start interval applies"
    );
    let h = e.svc.record(&id).unwrap().state.health.unwrap();
    assert_eq!((h.status, h.failing_streak), (Some(H::STARTING), Some(0)));
    e.runtime.exec_outcome(PROBE, Some((0, "")));
    until_health(&e.svc, &id, H::HEALTHY).await;
}

#[tokio::test]
async fn a_paused_container_is_not_probed() {
    let e = Engine::new().await;
    e.runtime.exec_outcome(PROBE, Some((0, "")));
    let id = e.create_body("pz", with_health(fast(1)));
    e.svc.start(&id).await.unwrap();
    until_health(&e.svc, &id, H::HEALTHY).await;
    e.svc.set_paused(&id, true).await.unwrap();
    no_probe_left(&e, &id).await;
    let probes = e.runtime.execs_of(&id).len();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(e.runtime.execs_of(&id).len(), probes);
    assert_eq!(health_of(&e.svc, &id), Some(H::UNHEALTHY));
    e.svc.set_paused(&id, false).await.unwrap();
    until_health(&e.svc, &id, H::HEALTHY).await;
    assert!(e.runtime.execs_of(&id).len() > probes);
}

#[tokio::test]
async fn a_probe_past_its_timeout_is_killed_and_fails() {
    let e = Engine::new().await;
    // No outcome: the probe runs until killed.
    let id = e.create_body(
        "to",
        with_health(bollard_stubs::models::HealthConfig {
            timeout: ms(50),
            ..fast(1)
        }),
    );
    e.svc.start(&id).await.unwrap();
    until_health(&e.svc, &id, H::UNHEALTHY).await;
    let last = e
        .svc
        .record(&id)
        .unwrap()
        .state
        .health
        .unwrap()
        .log
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(last.exit_code, Some(-1));
    assert_eq!(
        last.output.as_deref(),
        Some("Health check exceeded timeout (50ms)")
    );
    assert!(e
        .runtime
        .signals()
        .iter()
        .any(|(_, s)| *s == nix::sys::signal::Signal::SIGKILL));
    e.runtime.exit(&id, 0);
    until(&e.svc, &id, |r| !r.running()).await;
    no_probe_left(&e, &id).await;
}

#[tokio::test]
async fn the_monitor_stops_when_the_container_exits() {
    let e = Engine::new().await;
    // A probe that hangs is under way when the container exits.
    let id = e.create_body("ex", with_health(fast(1)));
    e.svc.start(&id).await.unwrap();
    for _ in 0..300 {
        if e.runtime.running_execs() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(e.runtime.running_execs(), 1);
    e.runtime.exit(&id, 0);
    until(&e.svc, &id, |r| !r.running()).await;
    no_probe_left(&e, &id).await;
    let probes = e.runtime.execs_of(&id).len();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(e.runtime.execs_of(&id).len(), probes);
    assert_eq!(health_of(&e.svc, &id), Some(H::UNHEALTHY));
    // Removing it leaves nothing either; a new start probes again from `starting`.
    e.runtime.exec_outcome(PROBE, Some((0, "")));
    e.svc.start(&id).await.unwrap();
    until_health(&e.svc, &id, H::HEALTHY).await;
    e.svc.remove(&id, true, false).await.unwrap();
    let probes = e.runtime.execs_of(&id).len();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(e.runtime.execs_of(&id).len(), probes);
}

#[tokio::test]
async fn no_healthcheck_means_no_health_and_no_probe() {
    let e = Engine::new().await;
    let plain = e.create("plain", HostConfig::default());
    let none = e.create_body(
        "none",
        ContainerCreateBody {
            image: Some("app".into()),
            healthcheck: Some(bollard_stubs::models::HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    for id in [&plain, &none] {
        e.svc.start(id).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for id in [&plain, &none] {
        assert_eq!(e.svc.inspect(id).unwrap().state.unwrap().health, None);
        assert!(e.runtime.execs_of(id).is_empty());
        let row = e
            .svc
            .list(&views::ListFilters {
                id: vec![id.clone()],
                health: vec!["none".into()],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(row.len(), 1);
        assert!(!row[0].status.as_deref().unwrap().contains('('));
    }
}

#[tokio::test]
async fn health_survives_an_engine_restart_and_probing_goes_on() {
    let e = Engine::new().await;
    e.runtime.exec_outcome(PROBE, Some((0, "")));
    let id = e.create_body("ad", with_health(fast(1)));
    e.svc.start(&id).await.unwrap();
    until_health(&e.svc, &id, H::HEALTHY).await;
    // The old engine "dies" (its monitor with it); the new one reads the record.
    e.runtime.exec_outcome(PROBE, Some((1, "")));
    e.svc.health_halt(&id);
    let again = e.restart().await;
    let kept = again.record(&id).unwrap().state.health.unwrap();
    assert!(!kept.log.unwrap_or_default().is_empty());
    let probes = e.runtime.execs_of(&id).len();
    e.runtime.exec_outcome(PROBE, Some((0, "")));
    until_health(&again, &id, H::HEALTHY).await;
    assert!(e.runtime.execs_of(&id).len() > probes);
}

#[tokio::test]
async fn a_container_adopted_without_health_gets_it() {
    let e = Engine::new().await;
    let id = e.create_body("old", with_health(fast(1)));
    e.svc.start(&id).await.unwrap();
    // As an engine that kept no health would have left it.
    e.svc.health_halt(&id);
    e.svc.update(&id, |r| r.state.health = None).unwrap();
    let again = e.restart().await;
    e.runtime.exec_outcome(PROBE, Some((0, "")));
    until_health(&again, &id, H::HEALTHY).await;
}
