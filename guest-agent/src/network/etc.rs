//! The `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` a container sees, written
//! into its directory and bind-mounted, with Docker's contents.

use std::net::Ipv4Addr;

/// Docker's fixed part of `/etc/hosts`.
const HOSTS_HEADER: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";

/// `extra` are `--add-host` entries as `name:ip`; `self_ip` the container's first
/// address (none for `--network none`).
pub fn hosts(hostname: &str, self_ip: Option<Ipv4Addr>, extra: &[(String, String)]) -> String {
    let mut s = String::from(HOSTS_HEADER);
    for (name, ip) in extra {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    if let Some(ip) = self_ip {
        s.push_str(&format!("{ip}\t{hostname}\n"));
    }
    s
}

/// Parses `--add-host` values (`name:ip`, `name=ip`); `host-gateway` becomes `gateway`.
pub fn parse_extra_hosts(
    entries: &[String],
    gateway: Option<Ipv4Addr>,
) -> Result<Vec<(String, String)>, String> {
    entries
        .iter()
        .map(|e| {
            let (name, ip) = e
                .split_once(['=', ':'])
                .ok_or_else(|| format!("invalid argument \"{e}\" for \"--add-host\" flag"))?;
            let ip = match (ip, gateway) {
                ("host-gateway", Some(g)) => g.to_string(),
                ("host-gateway", None) => {
                    return Err("unable to derive the IP value for host-gateway".into())
                }
                (ip, _) => ip.to_string(),
            };
            Ok((name.to_string(), ip))
        })
        .collect()
}

/// Options that shape `/etc/resolv.conf`.
#[derive(Debug, Default, Clone)]
pub struct DnsSettings {
    /// `--dns`
    pub servers: Vec<String>,
    /// `--dns-search`
    pub search: Vec<String>,
    /// `--dns-option`
    pub options: Vec<String>,
}

/// Docker's rules: on a user-defined network the embedded resolver (here at the
/// network's gateway) answers, with `options ndots:0`; otherwise the host's file with
/// loopback nameservers dropped (they cannot be reached from the container), and
/// Google's public servers when none remain. `--dns*` flags override each part.
pub fn resolv_conf(host: &str, embedded: Option<Ipv4Addr>, user: &DnsSettings) -> String {
    let mut servers: Vec<String> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    for line in host.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => {
                if let Some(ns) = f.next() {
                    if !ns.starts_with("127.") && ns != "::1" {
                        servers.push(ns.to_string());
                    }
                }
            }
            Some("search") | Some("domain") => search = f.map(str::to_string).collect(),
            Some("options") => options.extend(f.map(str::to_string)),
            _ => {}
        }
    }
    if let Some(gw) = embedded {
        servers = vec![gw.to_string()];
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.push("ndots:0".into());
        }
    } else if servers.is_empty() {
        servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    if !user.servers.is_empty() {
        servers = user.servers.clone();
    }
    if !user.search.is_empty() {
        search = user.search.clone();
    }
    if !user.options.is_empty() {
        options = user.options.clone();
    }
    let mut s = String::new();
    if !search.is_empty() {
        s.push_str(&format!("search {}\n", search.join(" ")));
    }
    for ns in servers {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    if !options.is_empty() {
        s.push_str(&format!("options {}\n", options.join(" ")));
    }
    s
}

/// The nameservers the host's resolv.conf names (loopback ones included: the engine
/// itself runs in the host's namespace and can reach them).
pub fn host_nameservers(host: &str) -> Vec<String> {
    host.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some("nameserver")).then(|| f.next().map(str::to_string))?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str =
        "search corp.example\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0\n";

    #[test]
    fn hosts_file() {
        let h = hosts(
            "abc",
            Some(Ipv4Addr::new(172, 17, 0, 2)),
            &[("db".into(), "10.1.1.1".into())],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.1.1.1\tdb\n172.17.0.2\tabc\n"));
        let extra = parse_extra_hosts(
            &["gw:host-gateway".into(), "x=1.2.3.4".into()],
            Some(Ipv4Addr::new(172, 17, 0, 1)),
        )
        .unwrap();
        assert_eq!(extra[0], ("gw".into(), "172.17.0.1".into()));
        assert_eq!(extra[1], ("x".into(), "1.2.3.4".into()));
        assert!(parse_extra_hosts(&["nocolon".into()], None).is_err());
    }

    #[test]
    fn resolv_rules() {
        let d = resolv_conf(HOST, None, &DnsSettings::default());
        assert_eq!(
            d,
            "search corp.example\nnameserver 10.0.0.2\noptions edns0\n"
        );
        let e = resolv_conf(
            HOST,
            Some(Ipv4Addr::new(172, 18, 0, 1)),
            &DnsSettings::default(),
        );
        assert_eq!(
            e,
            "search corp.example\nnameserver 172.18.0.1\noptions edns0 ndots:0\n"
        );
        let only_local = resolv_conf("nameserver 127.0.0.53\n", None, &DnsSettings::default());
        assert_eq!(only_local, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let user = DnsSettings {
            servers: vec!["1.1.1.1".into()],
            search: vec![],
            options: vec!["ndots:2".into()],
        };
        assert_eq!(
            resolv_conf(HOST, None, &user),
            "search corp.example\nnameserver 1.1.1.1\noptions ndots:2\n"
        );
        assert_eq!(host_nameservers(HOST), vec!["127.0.0.53", "10.0.0.2"]);
    }
}
