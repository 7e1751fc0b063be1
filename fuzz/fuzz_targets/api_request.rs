//! Docker API requests, past HTTP: the query string, the `X-Registry-Auth` header and
//! a `POST /containers/create` body, through the parsing the handlers do before they
//! call the engine (and the pure planning `create` does with the body).
//!
//! Input: line 1 is the query string (after `?`), line 2 the `X-Registry-Auth` value,
//! the rest the JSON body.

#![no_main]

use std::net::Ipv4Addr;

use berth_agent::api::{parsing, Query};
use berth_agent::containers::{self, config, names, views, WaitCondition};
use berth_agent::images::reference::ImageRef;
use berth_agent::images::ConfigFile;
use berth_agent::network::{etc, ports};
use berth_agent::runtime::spec;
use berth_agent::volumes::hostpaths::{HostOs, HostPaths};
use berth_agent::volumes::mounts;
use bollard_stubs::models::ContainerCreateBody;
use libfuzzer_sys::fuzz_target;

fn query(q: &Query) {
    // Filters, with each endpoint's allowed keys.
    let _ = parsing::list_filters(q);
    let _ = parsing::image_filters(
        q,
        &["dangling", "reference", "label", "before", "since", "until"],
    );
    let _ = parsing::volume_filters(q, &["dangling", "name", "driver", "label", "label!", "all"]);
    let _ = q.filters(&["type", "event", "container", "image", "label"]);
    let _ = q.filters(&["name", "id", "driver", "label", "type", "dangling", "scope"]);
    for k in ["since", "until"] {
        if let Some(v) = q.get(k) {
            let _ = parsing::parse_time(v);
        }
    }
    // `POST /build`: tags, build args and labels, as the handler checks them.
    for t in q.all("t") {
        let _ = ImageRef::parse(&t);
    }
    let _ = parsing::json_map(q, "buildargs");
    let _ = parsing::json_map(q, "labels");
    let _ = q.get("target").map(str::to_lowercase);
    let _ = (q.flag("q"), q.flag("nocache"), q.flag("pull"));
    // Containers: create's name, wait, attach, logs, kill.
    if let Some(n) = q.get("name") {
        let _ = names::validate(n);
    }
    let _ = WaitCondition::parse(q.get("condition"));
    let _ = parsing::parse_detach_keys(q.get("detachKeys"));
    let _ = parsing::log_options(q);
    if let Some(s) = q.get("signal") {
        let _ = containers::parse_signal(s);
    }
}

fn create(body: &ContainerCreateBody) {
    let req = views::create_config(body);
    let merged = config::merge(&req, &ConfigFile::default());
    let _ = config::command(&merged);
    if let Some(s) = &merged.stop_signal {
        let _ = containers::parse_signal(s);
    }
    let hc = body.host_config.clone().unwrap_or_default();
    let binds = hc.binds.clone().unwrap_or_default();
    let mounts_ = hc.mounts.clone().unwrap_or_default();
    let anonymous = merged.volumes.clone().unwrap_or_default();
    let plan = |binds: &[String]| {
        mounts::plan(
            &mounts::Request {
                binds,
                mounts: &mounts_,
                anonymous: &anonymous,
                volumes_from: &[],
            },
            &|_| false,
        )
    };
    let _ = plan(&binds);
    // In the VM of a Windows host, `-v C:\…:/dst` is translated first.
    let windows = HostPaths::new(HostOs::Windows, &[]);
    let translated: Vec<String> = binds.iter().map(|b| windows.translate_bind(b)).collect();
    if let Ok(planned) = plan(&translated) {
        for p in &planned {
            let _ = windows.check(&p.mount.source, |_| false);
        }
    }
    let exposed = merged.exposed_ports.clone().unwrap_or_default();
    let _ = ports::wanted(
        &hc.port_bindings.clone().unwrap_or_default(),
        &exposed,
        hc.publish_all_ports == Some(true),
    );
    let extra = hc.extra_hosts.clone().unwrap_or_default();
    let _ = etc::parse_extra_hosts(&extra, Some(Ipv4Addr::new(172, 17, 0, 1)));
    let _ = etc::parse_extra_hosts(&extra, None);
    for c in hc.cap_add.iter().chain(&hc.cap_drop).flatten() {
        let _ = spec::parse_capability(c);
    }
    let resources = spec::Resources::from_host_config(&hc);
    let _ = spec::linux_resources(&resources, vec![]);
    let _ = containers::log_rotation(&hc);
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let (q, auth, body) = (parts.next(), parts.next(), parts.next());
    let q = Query::parse(q.and_then(|q| std::str::from_utf8(q).ok()));
    query(&q);
    if let Some(a) = auth.and_then(|a| std::str::from_utf8(a).ok()) {
        let _ = parsing::registry_auth(Some(a));
    }
    if let Some(b) = body {
        if let Ok(body) = serde_json::from_slice::<ContainerCreateBody>(b) {
            create(&body);
        }
    }
});
