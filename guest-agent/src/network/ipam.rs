//! Address management: picking a subnet no other interface or route on the machine
//! uses, and handing out addresses inside it. Pure data, so it is unit-tested without
//! touching the host.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// An IPv4 subnet in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(s: &str) -> Option<Subnet> {
        let (a, p) = s.split_once('/')?;
        let prefix: u8 = p.parse().ok()?;
        if prefix > 30 {
            return None;
        }
        let addr: Ipv4Addr = a.parse().ok()?;
        Some(Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    pub fn network(&self) -> u32 {
        u32::from(self.addr) & mask(self.prefix)
    }

    pub fn broadcast(&self) -> u32 {
        self.network() | !mask(self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.network()
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let p = self.prefix.min(other.prefix);
        self.network() & mask(p) == other.network() & mask(p)
    }

    /// The first usable address, Docker's default gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network() + 1)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IPv6 subnet in CIDR form (host bits dropped, as dockerd takes `2001:db8::1/64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet6 {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

impl Subnet6 {
    pub fn parse(s: &str) -> Option<Subnet6> {
        let (a, p) = s.split_once('/')?;
        let prefix: u8 = p.parse().ok()?;
        // Room for a gateway and containers.
        if prefix > 126 {
            return None;
        }
        let addr: Ipv6Addr = a.parse().ok()?;
        Some(Subnet6 {
            addr: Ipv6Addr::from(u128::from(addr) & mask6(prefix)),
            prefix,
        })
    }

    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & mask6(self.prefix) == u128::from(self.addr)
    }

    pub fn overlaps(&self, other: &Subnet6) -> bool {
        let p = self.prefix.min(other.prefix);
        u128::from(self.addr) & mask6(p) == u128::from(other.addr) & mask6(p)
    }

    /// The `n`th address of the subnet (`::1` is the first host).
    pub fn nth(&self, n: u128) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) | (n & !mask6(self.prefix)))
    }

    /// A unique-local /64 for a network created with `--ipv6` and no subnet: `fd`
    /// and 56 bits of its id, so every network gets its own.
    pub fn ula_for(id_hex: &str) -> Subnet6 {
        let bits = u64::from_str_radix(id_hex.get(..14).unwrap_or("0"), 16).unwrap_or(0);
        let hi = (0xfdu128 << 120) | ((bits as u128) << 64);
        Subnet6 {
            addr: Ipv6Addr::from(hi),
            prefix: 64,
        }
    }
}

impl std::fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The first free address of `range` (one of the subnet's, or the subnet itself),
/// looking at the first 64Ki hosts (plenty for one machine's containers).
pub fn next_free6(range: &Subnet6, taken: &BTreeSet<Ipv6Addr>) -> Option<Ipv6Addr> {
    (1u128..65536)
        .map(|n| range.nth(n))
        .take_while(|ip| range.contains(*ip))
        .find(|ip| !taken.contains(ip))
}

fn mask6(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - p as u32),
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    }
}

/// Docker's default pools, in the order dockerd tries them: 172.17–31.0.0/16, then
/// 192.168.0–240.0/20.
pub fn default_pools() -> impl Iterator<Item = Subnet> {
    let b = (17..=31).map(|n| Subnet {
        addr: Ipv4Addr::new(172, n, 0, 0),
        prefix: 16,
    });
    let c = (0..16).map(|n| Subnet {
        addr: Ipv4Addr::new(192, 168, n * 16, 0),
        prefix: 20,
    });
    b.chain(c)
}

/// The first default pool that overlaps nothing in `used`.
pub fn pick_subnet(used: &[Subnet]) -> Option<Subnet> {
    default_pools().find(|s| !used.iter().any(|u| u.overlaps(s)))
}

/// The next free address in `subnet`, skipping the network address, the broadcast
/// address and everything in `taken` (which includes the gateway).
pub fn next_free(subnet: &Subnet, taken: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    (subnet.network() + 1..subnet.broadcast())
        .map(Ipv4Addr::from)
        .find(|ip| !taken.contains(ip))
}

/// Docker derives a container's MAC from its IPv4 address: 02:42 then the four bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// `02:42:ac:11:00:0a` → bytes; None unless six hex pairs.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_subnets_parse_and_hand_out_hosts() {
        let s = Subnet6::parse("2001:389::1/64").unwrap();
        assert_eq!(s.to_string(), "2001:389::/64");
        assert!(s.contains("2001:389::f00d".parse().unwrap()));
        assert!(!s.contains("2001:38a::1".parse().unwrap()));
        let taken: BTreeSet<Ipv6Addr> = ["2001:389::1".parse().unwrap()].into();
        assert_eq!(next_free6(&s, &taken), Some("2001:389::2".parse().unwrap()));
        let u = Subnet6::ula_for("0123456789abcdef");
        assert_eq!(u.to_string(), "fd01:2345:6789:abcd::/64");
        assert!(Subnet6::parse("2001:db8::/127").is_none());
        assert!(s.overlaps(&Subnet6::parse("2001:389::/48").unwrap()));
    }

    #[test]
    fn macs_parse_as_six_hex_pairs() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:0a"),
            Some([0x02, 0x42, 0xac, 0x11, 0, 0x0a])
        );
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
        assert_eq!(parse_mac("02:42:ac:11:00:0a:01"), None);
        assert_eq!(parse_mac("zz:42:ac:11:00:0a"), None);
    }

    #[test]
    fn parse_normalises_and_rejects() {
        let s = Subnet::parse("10.1.2.3/24").unwrap();
        assert_eq!(s.to_string(), "10.1.2.0/24");
        assert!(Subnet::parse("10.1.2.0/31").is_none());
        assert!(Subnet::parse("nope/24").is_none());
        assert!(Subnet::parse("10.0.0.0").is_none());
    }

    #[test]
    fn overlap_and_pick() {
        let a = Subnet::parse("172.17.0.0/16").unwrap();
        let b = Subnet::parse("172.17.5.0/24").unwrap();
        let c = Subnet::parse("172.18.0.0/16").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert_eq!(pick_subnet(&[b]), Some(c));
        assert_eq!(pick_subnet(&[]).unwrap().to_string(), "172.17.0.0/16");
        let all: Vec<Subnet> = default_pools().collect();
        assert_eq!(pick_subnet(&all), None);
    }

    #[test]
    fn addresses_skip_taken_and_edges() {
        let s = Subnet::parse("10.9.0.0/30").unwrap();
        let mut taken = BTreeSet::new();
        taken.insert(s.first_host());
        assert_eq!(next_free(&s, &taken), Some(Ipv4Addr::new(10, 9, 0, 2)));
        taken.insert(Ipv4Addr::new(10, 9, 0, 2));
        assert_eq!(
            next_free(&s, &taken),
            None,
            "the broadcast address is never given"
        );
        assert_eq!(
            mac_string(&mac_for(Ipv4Addr::new(172, 17, 0, 2))),
            "02:42:ac:11:00:02"
        );
    }
}
